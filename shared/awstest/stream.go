package awstest

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// StreamRecord returns the DynamoDB Streams record Lambda delivers for a write of item
// (NEW_IMAGE view), built from the JSON Lambda sends, so a test drives a stream consumer with
// the event shape it gets on AWS. eventName is INSERT, MODIFY or REMOVE; seq is the record's
// sequence number.
func StreamRecord(t testing.TB, eventName, seq string, item map[string]types.AttributeValue) events.DynamoDBEventRecord {
	t.Helper()
	keys := map[string]types.AttributeValue{"pk": item["pk"], "sk": item["sk"]}
	change := map[string]any{"Keys": wire(keys), "SequenceNumber": seq, "SizeBytes": 100, "StreamViewType": "NEW_IMAGE",
		"ApproximateCreationDateTime": 1.7e9}
	if eventName != "REMOVE" {
		change["NewImage"] = wire(item)
	}
	raw, err := json.Marshal(map[string]any{"eventID": "e" + seq, "eventName": eventName, "eventVersion": "1.1",
		"eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "dynamodb": change,
		"eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-11-20T00:00:00.000"})
	if err != nil {
		t.Fatal(err)
	}
	var r events.DynamoDBEventRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// wire is an item in DynamoDB's JSON (the shape of stream images).
func wire(item map[string]types.AttributeValue) map[string]any {
	out := make(map[string]any, len(item))
	for k, v := range item {
		out[k] = wireValue(v)
	}
	return out
}

func wireValue(v types.AttributeValue) any {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return map[string]string{"S": v.Value}
	case *types.AttributeValueMemberN:
		return map[string]string{"N": v.Value}
	case *types.AttributeValueMemberB:
		return map[string]string{"B": base64.StdEncoding.EncodeToString(v.Value)}
	case *types.AttributeValueMemberBOOL:
		return map[string]bool{"BOOL": v.Value}
	case *types.AttributeValueMemberM:
		return map[string]any{"M": wire(v.Value)}
	case *types.AttributeValueMemberL:
		l := make([]any, len(v.Value))
		for i, e := range v.Value {
			l[i] = wireValue(e)
		}
		return map[string]any{"L": l}
	case *types.AttributeValueMemberSS:
		return map[string]any{"SS": v.Value}
	case *types.AttributeValueMemberNS:
		return map[string]any{"NS": v.Value}
	}
	return map[string]bool{"NULL": true}
}

// Command publisher is the Lambda function on the table's DynamoDB stream (filtered to new
// outbox items): it publishes each item to the SNS topic and deletes it, reporting failures by
// sequence number. On its schedule it sweeps the outbox items the stream left behind.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/churnsignal/churnsignal/shared/function"
	"github.com/churnsignal/churnsignal/shared/publish"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

func main() {
	ctx := context.Background()
	env, log, cfg := function.Init(ctx, function.Publisher)
	pub := publish.NewSNS(sns.NewFromConfig(cfg), env.TopicARN)
	table := dynamo.New(dynamodb.NewFromConfig(cfg), env.Table)
	h := &publish.Handler{
		Stream: &publish.Stream{Publisher: pub, Outbox: table, Log: log},
		Sweep:  &publish.Sweep{Publisher: pub, Outbox: table, Log: log},
	}
	lambda.Start(h.Invoke)
}

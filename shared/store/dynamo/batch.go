package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/churnsignal/churnsignal/shared/fault"
)

// batchRead reads the items of keys (table keys, each named once), 100 per BatchGetItem,
// requesting UnprocessedKeys again with a doubling pause from s.backoff, at most s.retries
// times, and hands every item found to found. Keys still unprocessed after the retries are a
// transient error, never an absence. projection, when not empty, is the request's
// ProjectionExpression. This is the one retry loop of the store's batched reads.
func (s *Store) batchRead(ctx context.Context, op string, keys []map[string]types.AttributeValue, consistent bool, projection string, found func(map[string]types.AttributeValue)) error {
	for start := 0; start < len(keys); start += 100 {
		req := types.KeysAndAttributes{ConsistentRead: aws.Bool(consistent), Keys: keys[start:min(start+100, len(keys))]}
		if projection != "" {
			req.ProjectionExpression = aws.String(projection)
		}
		pending := map[string]types.KeysAndAttributes{s.table: req}
		pause := s.backoff
		for round := 0; ; round++ {
			out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
			if err != nil {
				return classify("dynamo: "+op, err)
			}
			for _, item := range out.Responses[s.table] {
				found(item)
			}
			left, ok := out.UnprocessedKeys[s.table]
			if !ok || len(left.Keys) == 0 {
				break
			}
			if round >= s.retries {
				return fault.New("dynamo: "+op, fault.Transient, fmt.Sprintf("%d keys still unprocessed after %d retries", len(left.Keys), s.retries))
			}
			select {
			case <-ctx.Done():
				return fault.E("dynamo: "+op, fault.Transient, ctx.Err())
			case <-time.After(pause):
			}
			pause *= 2
			pending = map[string]types.KeysAndAttributes{s.table: left}
		}
	}
	return nil
}

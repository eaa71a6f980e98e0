// Command recompute is the Lambda function that rescores every account: the EventBridge
// schedule invokes it to enqueue one job per shard, and the recompute queue invokes it with
// those jobs, each rescoring its shard within a time budget.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/churnsignal/churnsignal/shared/function"
	"github.com/churnsignal/churnsignal/shared/recompute"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

func main() {
	ctx := context.Background()
	env, log, cfg := function.Init(ctx, function.Recompute)
	st := dynamo.New(dynamodb.NewFromConfig(cfg), env.Table)
	fanout := &recompute.Fanout{
		Service:  function.Service(st, nil, log),
		SQS:      sqs.NewFromConfig(cfg),
		QueueURL: env.RecomputeQueueURL,
		Shards:   env.RecomputeShards,
		Budget:   env.RecomputeBudget,
		Log:      log,
	}
	lambda.Start(fanout.Invoke)
}

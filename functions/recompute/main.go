// Command recompute is the Lambda function that rescores every account: the EventBridge
// schedule invokes it to enqueue one job per shard, and the recompute queue invokes it with
// those jobs, each rescoring its shard within a time budget.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/churnsignal/churnsignal/shared/function"
	"github.com/churnsignal/churnsignal/shared/recompute"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

func main() {
	ctx := context.Background()
	env, err := function.Load(function.Recompute, os.Getenv)
	log := function.Logger(env)
	if err != nil {
		function.Exit(log, err)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		function.Exit(log, err)
	}
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

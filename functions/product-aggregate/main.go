// Command product-aggregate is the Lambda function on the product queue: it applies each SQS
// batch of queued product messages with one commit per account, reporting failed queue
// messages through ReportBatchItemFailures.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/churnsignal/churnsignal/shared/function"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

func main() {
	ctx := context.Background()
	env, err := function.Load(function.ProductAggregate, os.Getenv)
	log := function.Logger(env)
	if err != nil {
		function.Exit(log, err)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		function.Exit(log, err)
	}
	st := dynamo.New(dynamodb.NewFromConfig(cfg), env.Table)
	lambda.Start(function.AggregateHandler(function.Service(st, nil, log), log))
}

// Command product-aggregate is the Lambda function on the product queue: it applies each SQS
// batch of queued product messages with one commit per account, reporting failed queue
// messages through ReportBatchItemFailures.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/churnsignal/churnsignal/shared/function"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

func main() {
	ctx := context.Background()
	env, log, cfg := function.Init(ctx, function.ProductAggregate)
	st := dynamo.New(dynamodb.NewFromConfig(cfg), env.Table)
	lambda.Start(function.AggregateHandler(function.Service(st, nil, log), log))
}

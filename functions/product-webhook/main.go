// Command product-webhook is the Lambda function behind POST /webhooks/product (and the
// Segment / RudderStack library paths): it authenticates and validates product messages and
// enqueues the accepted ones on the product queue, answering 202.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/churnsignal/churnsignal/shared/function"
	"github.com/churnsignal/churnsignal/shared/queue"
	"github.com/churnsignal/churnsignal/shared/secret"
)

func main() {
	ctx := context.Background()
	env, log, cfg := function.Init(ctx, function.ProductWebhook)
	secrets, err := secret.New(cfg).Resolve(ctx, "PRODUCT_WEBHOOK_SECRET")
	if err != nil {
		function.Exit(log, err)
	}
	q := queue.NewSQS(sqs.NewFromConfig(cfg), env.ProductQueueURL)
	lambda.Start(function.ProductHandler(q, secrets["PRODUCT_WEBHOOK_SECRET"], log))
}

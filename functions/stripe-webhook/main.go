// Command stripe-webhook is the Lambda function behind POST /webhooks/stripe: it verifies
// Stripe's signature over the raw body and applies the event to the DynamoDB table.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/churnsignal/churnsignal/shared/function"
	"github.com/churnsignal/churnsignal/shared/ingest"
	"github.com/churnsignal/churnsignal/shared/secret"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
	"github.com/churnsignal/churnsignal/shared/stripeapi"
)

func main() {
	ctx := context.Background()
	env, log, cfg := function.Init(ctx, function.StripeWebhook)
	names := []string{"STRIPE_WEBHOOK_SECRET"}
	if env.ChargeLookup {
		names = append(names, "STRIPE_API_KEY")
	}
	secrets, err := secret.New(cfg).Resolve(ctx, names...)
	if err != nil {
		function.Exit(log, err)
	}
	var charges ingest.ChargeLookup
	if env.ChargeLookup {
		charges = stripeapi.New(secrets["STRIPE_API_KEY"], "")
	}
	st := dynamo.New(dynamodb.NewFromConfig(cfg), env.Table)
	lambda.Start(function.StripeHandler(st, function.StripeSecrets(secrets["STRIPE_WEBHOOK_SECRET"]), charges, log))
}

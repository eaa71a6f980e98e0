// Command api is the Lambda function behind GET /accounts/{id} and GET /accounts; API
// Gateway's IAM authorizer guards both routes.
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
	env, log, cfg := function.Init(ctx, function.API)
	st := dynamo.New(dynamodb.NewFromConfig(cfg), env.Table)
	lambda.Start(function.APIHandler(st, log))
}

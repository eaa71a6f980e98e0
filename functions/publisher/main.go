// Command publisher is the Lambda function on the table's DynamoDB stream (filtered to new
// outbox items): it publishes each item to the SNS topic and deletes it, reporting failures by
// sequence number.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/churnsignal/churnsignal/shared/function"
	"github.com/churnsignal/churnsignal/shared/publish"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

func main() {
	ctx := context.Background()
	env, err := function.Load(function.Publisher, os.Getenv)
	log := function.Logger(env)
	if err != nil {
		function.Exit(log, err)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		function.Exit(log, err)
	}
	stream := &publish.Stream{
		Publisher: publish.NewSNS(sns.NewFromConfig(cfg), env.TopicARN),
		Outbox:    dynamo.New(dynamodb.NewFromConfig(cfg), env.Table),
		Log:       log,
	}
	lambda.Start(stream.Handle)
}

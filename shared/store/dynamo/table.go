package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TableAPI is the part of the DynamoDB client CreateTable calls.
type TableAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
}

// TableInput is the table the store needs, for tests and the local AWS path; the SAM
// template declares the same (docs/DYNAMO.md): keys pk/sk (strings), on-demand billing, a
// stream of new images (the publisher reads outbox items from it), and three GSIs — risk
// (lp/ls, INCLUDE sum), shard (sh/pk, KEYS_ONLY) and outbox (ob/obt, KEYS_ONLY; sweep.go).
func TableInput(table string) *dynamodb.CreateTableInput {
	s := types.ScalarAttributeTypeS
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: s},
			{AttributeName: aws.String(attrSK), AttributeType: s},
			{AttributeName: aws.String(attrListPK), AttributeType: s},
			{AttributeName: aws.String(attrListSK), AttributeType: s},
			{AttributeName: aws.String(attrShard), AttributeType: s},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{
			{
				IndexName: aws.String(RiskIndex),
				KeySchema: []types.KeySchemaElement{
					{AttributeName: aws.String(attrListPK), KeyType: types.KeyTypeHash},
					{AttributeName: aws.String(attrListSK), KeyType: types.KeyTypeRange},
				},
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeInclude, NonKeyAttributes: []string{attrSummary}},
			},
			{
				IndexName: aws.String(ShardIndex),
				KeySchema: []types.KeySchemaElement{
					{AttributeName: aws.String(attrShard), KeyType: types.KeyTypeHash},
					{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeRange},
				},
				Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
			},
		},
		StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage},
	}
	in.AttributeDefinitions = append(in.AttributeDefinitions, outboxIndexAttributes()...) // sweep.go
	in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, outboxIndex())
	return in
}

// CreateTable creates table as TableInput describes it, waits until it is active and turns on
// TTL on the expires attribute.
func CreateTable(ctx context.Context, db TableAPI, table string) error {
	if _, err := db.CreateTable(ctx, TableInput(table)); err != nil {
		return fmt.Errorf("dynamo: create table %s: %w", table, err)
	}
	for i := 0; ; i++ {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			return fmt.Errorf("dynamo: describe table %s: %w", table, err)
		}
		if out.Table.TableStatus == types.TableStatusActive {
			break
		}
		if i == 600 {
			return errors.New("dynamo: table " + table + " not active after 60 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	_, err := db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attrExpires), Enabled: aws.Bool(true)}})
	if err != nil {
		return fmt.Errorf("dynamo: enable TTL on %s: %w", table, err)
	}
	return nil
}

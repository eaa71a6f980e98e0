package dynamo

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/aws/smithy-go"

	"github.com/churnsignal/churnsignal/shared/fault"
	"github.com/churnsignal/churnsignal/shared/store"
)

// classify gives a DynamoDB error its kind, in one place: throttling, capacity and service
// faults, timeouts and network errors are transient (the sender retries later); a request
// DynamoDB refuses as invalid (an item over 400 KB, a bad expression) is permanent. Anything
// else keeps kind Other, which ingest treats as transient.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
			"InternalServerError", "ServiceUnavailable", "TransactionInProgressException", "LimitExceededException":
			return fault.E(op, fault.Transient, err)
		case "ValidationException", "ItemCollectionSizeLimitExceededException":
			if strings.Contains(strings.ToLower(api.ErrorMessage()), "size") {
				// The adapter measures items before sending; should DynamoDB count a few bytes
				// more, the caller still sees the limit, not an unexplained refusal.
				return fault.E(op, fault.Permanent, store.TooLarge("%v", err))
			}
			return fault.E(op, fault.Permanent, err)
		case "ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException":
			return fault.E(op, fault.Internal, err)
		}
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.As(err, &ne) {
		return fault.E(op, fault.Transient, err)
	}
	return fault.E(op, fault.Other, err)
}

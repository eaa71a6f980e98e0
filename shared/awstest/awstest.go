// Package awstest points tests at moto_server, the AWS emulator the adapters are proven
// against: Config returns an AWS config for it, or skips the test saying what to start (and
// fails instead when CHURNSIGNAL_REQUIRE_EMULATORS is set, as in CI).
package awstest

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

var announced sync.Once

// Config returns the AWS config of the emulator named by AWS_ENDPOINT_URL.
func Config(t testing.TB) aws.Config {
	t.Helper()
	if os.Getenv("AWS_ENDPOINT_URL") == "" {
		const why = "AWS_ENDPOINT_URL is not set: the AWS adapter tests need moto_server (infra/moto/start.sh, or moto_server -p 5000 & with AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test)"
		if os.Getenv("CHURNSIGNAL_REQUIRE_EMULATORS") != "" {
			t.Fatal(why)
		}
		announced.Do(func() { // go test hides a passing package's output: say it where it shows
			var w io.Writer = os.Stderr
			if f, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
				defer f.Close()
				w = f
			}
			fmt.Fprintln(w, "churnsignal: SKIP "+why)
		})
		t.Skip(why)
	}
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Name returns a resource name no other test run against the same emulator uses.
func Name(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

package secret

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/churnsignal/churnsignal/shared/awstest"
	"github.com/churnsignal/churnsignal/shared/fault"
)

// env is a fixed environment for one resolution.
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// countingSSM counts GetParameter calls per name.
type countingSSM struct {
	ParameterStore
	mu    sync.Mutex
	calls map[string]int
}

func (c *countingSSM) GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	c.mu.Lock()
	c.calls[aws.ToString(in.Name)]++
	c.mu.Unlock()
	return c.ParameterStore.GetParameter(ctx, in, opts...)
}

func TestResolveReadsSecretsFromParameterStoreSecretsManagerOrThePlainVariable(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("/churnsignal-test-%d", time.Now().UnixNano())
	const (
		stripeValue  = "whsec_from_parameter_store,whsec_rotating_out"
		productValue = "product-secret-from-secrets-manager"
		apiValue     = "api-token-from-secrets-manager-by-name"
	)
	sm := secretsmanager.NewFromConfig(cfg)
	if _, err := ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(prefix + "/stripe-webhook-secret"), Value: aws.String(stripeValue), Type: ssmtypes.ParameterTypeSecureString,
	}); err != nil {
		t.Fatal(err)
	}
	product, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(prefix[1:] + "/product"), SecretString: aws.String(productValue)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(prefix[1:] + "/api"), SecretString: aws.String(apiValue)}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(prefix[1:] + "/echoed"), SecretString: aws.String(apiValue + "\n")}); err != nil {
		t.Fatal(err)
	}
	secretValues := []string{stripeValue, productValue, apiValue, "plain-local-secret"}

	tests := []struct {
		name      string
		env       func(string) string
		want      Values
		wantKind  fault.Kind
		wantInErr []string
	}{
		{
			name: "a SecureString in Parameter Store is read decrypted",
			env:  env("STRIPE_WEBHOOK_SECRET_PARAM", prefix+"/stripe-webhook-secret"),
			want: Values{"STRIPE_WEBHOOK_SECRET": stripeValue},
		},
		{
			name: "a Secrets Manager secret is read by its ARN",
			env:  env("STRIPE_WEBHOOK_SECRET_PARAM", aws.ToString(product.ARN)),
			want: Values{"STRIPE_WEBHOOK_SECRET": productValue},
		},
		{
			name: "a Secrets Manager secret is read by its name after secretsmanager:",
			env:  env("STRIPE_WEBHOOK_SECRET_PARAM", "secretsmanager:"+prefix[1:]+"/api"),
			want: Values{"STRIPE_WEBHOOK_SECRET": apiValue},
		},
		{
			name: "a secret stored with a trailing newline is read without it",
			env:  env("STRIPE_WEBHOOK_SECRET_PARAM", "secretsmanager:"+prefix[1:]+"/echoed"),
			want: Values{"STRIPE_WEBHOOK_SECRET": apiValue},
		},
		{
			name: "a plain variable still works for local runs",
			env:  env("STRIPE_WEBHOOK_SECRET", "plain-local-secret"),
			want: Values{"STRIPE_WEBHOOK_SECRET": "plain-local-secret"},
		},
		{
			name:      "a missing parameter fails naming the variable and the parameter, never a value",
			env:       env("STRIPE_WEBHOOK_SECRET_PARAM", prefix+"/stripe-webhook-secret", "PRODUCT_WEBHOOK_SECRET_PARAM", prefix+"/missing"),
			wantKind:  fault.NotFound,
			wantInErr: []string{"PRODUCT_WEBHOOK_SECRET_PARAM", prefix + "/missing"},
		},
		{
			name:      "a missing Secrets Manager secret fails naming the variable and the secret",
			env:       env("STRIPE_WEBHOOK_SECRET", "plain-local-secret", "PRODUCT_WEBHOOK_SECRET_PARAM", "secretsmanager:"+prefix[1:]+"/missing"),
			wantKind:  fault.NotFound,
			wantInErr: []string{"PRODUCT_WEBHOOK_SECRET_PARAM", "secretsmanager:" + prefix[1:] + "/missing"},
		},
		{
			name:      "a secret set both ways is refused without echoing the value",
			env:       env("STRIPE_WEBHOOK_SECRET", "plain-local-secret", "STRIPE_WEBHOOK_SECRET_PARAM", prefix+"/stripe-webhook-secret", "PRODUCT_WEBHOOK_SECRET_PARAM", aws.ToString(product.ARN)),
			wantKind:  fault.Invalid,
			wantInErr: []string{"STRIPE_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET_PARAM"},
		},
		{
			name:      "a secret set neither way is named",
			env:       env("STRIPE_WEBHOOK_SECRET", "plain-local-secret"),
			wantKind:  fault.Invalid,
			wantInErr: []string{"PRODUCT_WEBHOOK_SECRET_PARAM", "PRODUCT_WEBHOOK_SECRET"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(cfg)
			r.Getenv = tt.env
			names := []string{"STRIPE_WEBHOOK_SECRET"}
			if tt.want == nil {
				names = append(names, "PRODUCT_WEBHOOK_SECRET")
			}
			got, err := r.Resolve(ctx, names...)
			if tt.want != nil {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if len(got) != len(tt.want) || got["STRIPE_WEBHOOK_SECRET"] != tt.want["STRIPE_WEBHOOK_SECRET"] {
					t.Fatalf("resolved a different value (%d values)", len(got))
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve succeeded with %v, want an error", got)
			}
			if got != nil {
				t.Errorf("a failed resolution returned values")
			}
			if k := fault.KindOf(firstError(err)); k != tt.wantKind {
				t.Errorf("kind %v, want %v: %v", k, tt.wantKind, err)
			}
			for _, s := range tt.wantInErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the error does not name %s: %v", s, err)
				}
			}
			for _, v := range secretValues {
				if strings.Contains(err.Error(), v) {
					t.Errorf("the error holds a secret value: %v", err)
				}
			}
		})
	}
}

func TestResolveReadsEachParameterOnce(t *testing.T) {
	cfg := awstest.Config(t)
	ctx := context.Background()
	name := fmt.Sprintf("/churnsignal-test-%d/shared", time.Now().UnixNano())
	if _, err := ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String(name), Value: aws.String("shared-value"), Type: ssmtypes.ParameterTypeSecureString,
	}); err != nil {
		t.Fatal(err)
	}
	counter := &countingSSM{ParameterStore: ssm.NewFromConfig(cfg), calls: map[string]int{}}
	r := &Resolver{Parameters: counter, Getenv: env("PRODUCT_WEBHOOK_SECRET_PARAM", name, "API_TOKEN_PARAM", name)}
	got, err := r.Resolve(ctx, "PRODUCT_WEBHOOK_SECRET", "API_TOKEN")
	if err != nil {
		t.Fatal(err)
	}
	if got["PRODUCT_WEBHOOK_SECRET"] != "shared-value" || got["API_TOKEN"] != "shared-value" {
		t.Fatalf("both variables should hold the parameter's value")
	}
	if counter.calls[name] != 1 {
		t.Fatalf("the parameter was read %d times, want once", counter.calls[name])
	}
}

func TestResolveNeedsNoAWSForPlainVariables(t *testing.T) {
	r := &Resolver{Getenv: env("STRIPE_WEBHOOK_SECRET", "whsec_local", "API_TOKEN_PARAM", "/churnsignal/api-token")}
	got, err := r.Resolve(context.Background(), "STRIPE_WEBHOOK_SECRET")
	if err != nil || got["STRIPE_WEBHOOK_SECRET"] != "whsec_local" {
		t.Fatalf("plain variable without AWS clients: %v", err)
	}
	_, err = r.Resolve(context.Background(), "API_TOKEN")
	if err == nil || !strings.Contains(err.Error(), "API_TOKEN_PARAM") {
		t.Fatalf("a parameter without a client should fail naming the variable, got %v", err)
	}
}

func TestResolvedValuesNeverShowWhenPrintedOrLogged(t *testing.T) {
	v := Values{"STRIPE_WEBHOOK_SECRET": "whsec_very_secret", "API_TOKEN": "tok_very_secret"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config resolved", "secrets", v)
	for _, out := range []string{fmt.Sprint(v), fmt.Sprintf("%v", v), fmt.Sprintf("%#v", v), fmt.Sprintf("%+v", v), logged.String()} {
		if strings.Contains(out, "very_secret") {
			t.Errorf("a secret value shows: %s", out)
		}
		if !strings.Contains(out, "STRIPE_WEBHOOK_SECRET") {
			t.Errorf("the names should show: %s", out)
		}
	}
}

// firstError is the first failure a joined error holds.
func firstError(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) > 0 {
		return j.Unwrap()[0]
	}
	return err
}

func TestSecretsManagerNamesAreToldApartFromParameterNames(t *testing.T) {
	tests := []struct {
		param  string
		wantSM bool
		wantID string
	}{
		{"/churnsignal/stripe-webhook-secret", false, ""},
		{"churnsignal-stripe", false, ""},
		{"arn:aws:ssm:us-east-1:123456789012:parameter/churnsignal/x", false, ""},
		{"arn:aws:secretsmanager:us-east-1:123456789012:secret:churnsignal/x-AbCdEf", true, "arn:aws:secretsmanager:us-east-1:123456789012:secret:churnsignal/x-AbCdEf"},
		{"secretsmanager:churnsignal/x", true, "churnsignal/x"},
	}
	for _, tt := range tests {
		id, ok := secretsManagerID(tt.param)
		if ok != tt.wantSM || id != tt.wantID {
			t.Errorf("%s: (%q, %v), want (%q, %v)", tt.param, id, ok, tt.wantID, tt.wantSM)
		}
	}
}

// Package secret resolves the secrets a process needs, once, when it starts. A secret NAME
// comes from the environment variable NAME_PARAM when that is set — naming an SSM Parameter
// Store parameter (a SecureString, read with decryption) or, as an ARN or with the prefix
// "secretsmanager:", a Secrets Manager secret — or else from the plain variable NAME, which is
// how local runs pass it. Values are never logged, and never part of an error: an error names
// the variable and the parameter only.
package secret

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/churnsignal/churnsignal/shared/fault"
)

// Suffix ends the name of a variable that names where a secret is kept rather than holding it.
const Suffix = "_PARAM"

// SecretsManagerPrefix marks a parameter name as a Secrets Manager secret name (an ARN of a
// Secrets Manager secret needs no prefix).
const SecretsManagerPrefix = "secretsmanager:"

// ParameterStore is the part of the SSM API Resolver calls; *ssm.Client satisfies it.
type ParameterStore interface {
	GetParameter(ctx context.Context, in *ssm.GetParameterInput, opts ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// SecretsManager is the part of the Secrets Manager API Resolver calls;
// *secretsmanager.Client satisfies it.
type SecretsManager interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var (
	_ ParameterStore = (*ssm.Client)(nil)
	_ SecretsManager = (*secretsmanager.Client)(nil)
)

// Resolver reads secrets from the environment, SSM Parameter Store and Secrets Manager.
type Resolver struct {
	// Parameters reads SSM parameters; nil when no secret is kept there (local runs).
	Parameters ParameterStore
	// Secrets reads Secrets Manager secrets; nil when no secret is kept there.
	Secrets SecretsManager
	// Getenv reads the environment; os.Getenv when nil.
	Getenv func(string) string
}

// New returns a Resolver with clients built from cfg (config.LoadDefaultConfig, so
// AWS_ENDPOINT_URL points them at an emulator).
func New(cfg aws.Config) *Resolver {
	return &Resolver{Parameters: ssm.NewFromConfig(cfg), Secrets: secretsmanager.NewFromConfig(cfg)}
}

// Values are resolved secrets by name (the variable name without Suffix). Printing or logging
// Values shows the names only.
type Values map[string]string

// String lists the names with their values redacted, so a stray print leaks nothing.
func (v Values) String() string {
	names := make([]string, 0, len(v))
	for n := range v {
		names = append(names, n+"=[redacted]")
	}
	sort.Strings(names)
	return "secret.Values{" + strings.Join(names, " ") + "}"
}

// GoString keeps the values out of %#v.
func (v Values) GoString() string { return v.String() }

// LogValue keeps the values out of slog output.
func (v Values) LogValue() slog.Value { return slog.StringValue(v.String()) }

// Resolve returns the value of every named secret, reading each parameter once; values from a
// store are trimmed of surrounding white space. It fails,
// naming every variable at fault and never a value, when a secret is set both ways or neither,
// when its parameter does not exist (fault.NotFound) or is empty (fault.Invalid), or when the
// store cannot be reached (fault.Transient).
func (r *Resolver) Resolve(ctx context.Context, names ...string) (Values, error) {
	getenv := r.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	out := make(Values, len(names))
	fetched := map[string]string{} // parameter name → value, so a parameter is read once
	var errs []error
	for _, name := range names {
		plain, param := getenv(name), getenv(name+Suffix)
		switch {
		case param != "" && plain != "":
			errs = append(errs, fault.New("secret "+name, fault.Invalid,
				fmt.Sprintf("both %s and %s are set; set only %s (the parameter name) on AWS, or only %s locally", name, name+Suffix, name+Suffix, name)))
		case param != "":
			v, ok := fetched[param]
			if !ok {
				var err error
				if v, err = r.fetch(ctx, param); err != nil {
					errs = append(errs, fault.E(fmt.Sprintf("secret %s: %s=%s", name, name+Suffix, param), fault.KindOf(err), err))
					continue
				}
				fetched[param] = v
			}
			out[name] = v
		case plain != "":
			out[name] = plain
		default:
			errs = append(errs, fault.New("secret "+name, fault.Invalid,
				fmt.Sprintf("neither %s (a parameter name) nor %s is set", name+Suffix, name)))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// fetch reads one parameter or secret, without the surrounding white space a value written
// from a file or with echo tends to carry (a webhook secret with a trailing newline would fail
// every signature check, silently). Its errors carry SDK causes, which name the parameter
// but never hold a value.
func (r *Resolver) fetch(ctx context.Context, param string) (string, error) {
	if id, ok := secretsManagerID(param); ok {
		if r.Secrets == nil {
			return "", fault.New("", fault.Internal, "no Secrets Manager client configured")
		}
		out, err := r.Secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
		if err != nil {
			var nf *smtypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				return "", fault.New("", fault.NotFound, "no such secret in Secrets Manager")
			}
			return "", fault.E("", fault.Transient, err)
		}
		v := strings.TrimSpace(aws.ToString(out.SecretString))
		if v == "" {
			return "", fault.New("", fault.Invalid, "the secret has no string value")
		}
		return v, nil
	}
	if r.Parameters == nil {
		return "", fault.New("", fault.Internal, "no SSM Parameter Store client configured")
	}
	out, err := r.Parameters.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(param), WithDecryption: aws.Bool(true)})
	if err != nil {
		var nf *ssmtypes.ParameterNotFound
		if errors.As(err, &nf) {
			return "", fault.New("", fault.NotFound, "no such parameter in SSM Parameter Store")
		}
		return "", fault.E("", fault.Transient, err)
	}
	var v string
	if out.Parameter != nil {
		v = strings.TrimSpace(aws.ToString(out.Parameter.Value))
	}
	if v == "" {
		return "", fault.New("", fault.Invalid, "the parameter is empty")
	}
	return v, nil
}

// secretsManagerID returns the Secrets Manager secret id param names, if it names one: an ARN
// of the secretsmanager service, or a name after SecretsManagerPrefix.
func secretsManagerID(param string) (string, bool) {
	if id, ok := strings.CutPrefix(param, SecretsManagerPrefix); ok {
		return id, true
	}
	if parts := strings.SplitN(param, ":", 4); len(parts) == 4 && parts[0] == "arn" && parts[2] == "secretsmanager" {
		return param, true
	}
	return "", false
}

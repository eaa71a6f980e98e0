// Package infra_test checks template.yaml, the SAM template, against the contract the functions
// keep (docs/DYNAMO.md, the functions' environment, their triggers): what cfn-lint cannot know.
package infra_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	fns "github.com/churnsignal/churnsignal/shared/function"
	"github.com/churnsignal/churnsignal/shared/store/dynamo"
)

// contract is the functions' part of the shared contract (prompts/aws-contract.md, README): the
// environment each function reads and how it is triggered.
var contract = map[string]struct {
	required []string // variables the function cannot start without
	optional []string // variables the template sets when a parameter asks for it
	routes   []string // "METHOD path" of its HTTP API routes
	signed   bool     // its routes use IAM authorization
}{
	"stripe-webhook": {
		required: []string{"TABLE_NAME", "STRIPE_WEBHOOK_SECRET_PARAM"},
		optional: []string{"STRIPE_API_KEY_PARAM"},
		routes:   []string{"POST /webhooks/stripe"},
	},
	"product-webhook": {
		required: []string{"PRODUCT_WEBHOOK_SECRET_PARAM", "PRODUCT_QUEUE_URL"},
		routes:   []string{"POST /webhooks/product", "POST /webhooks/product/v1/{type}", "POST /v1/{type}"},
	},
	"product-aggregate": {required: []string{"TABLE_NAME"}},
	"api": {
		required: []string{"TABLE_NAME"},
		routes:   []string{"GET /accounts/{id}", "GET /accounts"},
		signed:   true,
	},
	"publisher": {required: []string{"TABLE_NAME", "TOPIC_ARN"}},
	"recompute": {required: []string{"TABLE_NAME", "RECOMPUTE_QUEUE_URL", "RECOMPUTE_SHARDS", "RECOMPUTE_BUDGET_SECONDS"}},
}

// everyFunction reads LOG_LEVEL (optional in the contract); the template sets it for all.
const everyFunction = "LOG_LEVEL"

// refersTo is the resource type (or "Parameter") that a variable's value must reference.
var refersTo = map[string]string{
	"TABLE_NAME":                   "AWS::DynamoDB::Table",
	"PRODUCT_QUEUE_URL":            "AWS::SQS::Queue",
	"RECOMPUTE_QUEUE_URL":          "AWS::SQS::Queue",
	"TOPIC_ARN":                    "AWS::SNS::Topic",
	"STRIPE_WEBHOOK_SECRET_PARAM":  "Parameter",
	"PRODUCT_WEBHOOK_SECRET_PARAM": "Parameter",
	"STRIPE_API_KEY_PARAM":         "Parameter",
	"RECOMPUTE_SHARDS":             "Parameter",
	"RECOMPUTE_BUDGET_SECONDS":     "Parameter",
	"LOG_LEVEL":                    "Parameter",
}

// yamlToJSON turns CloudFormation YAML, short-form intrinsics included (!Ref, !GetAtt a.b, !If
// …), into its JSON form. PyYAML comes with cfn-lint, which CI installs before the tests.
const yamlToJSON = `
import json, sys, yaml
class Loader(yaml.SafeLoader):
    pass
def intrinsic(loader, tag, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag == "Ref" or tag == "Condition":
        return {tag: value}
    if tag == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Fn::" + tag: value}
Loader.add_multi_constructor("!", intrinsic)
with open(sys.argv[1]) as f:
    json.dump(yaml.load(f, Loader=Loader), sys.stdout, default=str)
`

// repoRoot is the module root: this package sits in infra/.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod above infra/: %v", err)
	}
	return root
}

type template struct {
	Rules      map[string]map[string]any `json:"Rules"`
	Globals    map[string]any            `json:"Globals"`
	Parameters map[string]map[string]any `json:"Parameters"`
	Resources  map[string]resource       `json:"Resources"`
	Outputs    map[string]map[string]any `json:"Outputs"`
}

type resource struct {
	Type       string         `json:"Type"`
	Metadata   map[string]any `json:"Metadata"`
	Properties map[string]any `json:"Properties"`
}

// load parses template.yaml; without python3 and PyYAML it skips (it fails instead when CI
// demands every tool, as .ci/run does through CHURNSIGNAL_REQUIRE_EMULATORS).
func load(t *testing.T) template {
	t.Helper()
	path := filepath.Join(repoRoot(t), "template.yaml")
	var out, errOut bytes.Buffer
	cmd := exec.Command("python3", "-c", yamlToJSON, path)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		why := fmt.Sprintf("cannot read template.yaml without python3 and PyYAML (pip install cfn-lint brings it): %v: %s", err, errOut.String())
		if os.Getenv("CHURNSIGNAL_REQUIRE_EMULATORS") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	var tpl template
	if err := json.Unmarshal(out.Bytes(), &tpl); err != nil {
		t.Fatalf("template.yaml as JSON: %v", err)
	}
	return tpl
}

// function is one AWS::Serverless::Function of the template, named by its CodeUri.
type function struct {
	logical string
	name    string // the directory under functions/
	res     resource
	env     map[string]any // Globals' variables, then the function's own
}

func functions(t *testing.T, tpl template) map[string]function {
	t.Helper()
	out := map[string]function{}
	for logical, r := range tpl.Resources {
		if r.Type != "AWS::Serverless::Function" {
			continue
		}
		uri, _ := r.Properties["CodeUri"].(string)
		name, ok := strings.CutPrefix(uri, "functions/")
		if !ok || name == "" || strings.Contains(name, "/") {
			t.Errorf("%s: CodeUri %q is not functions/<name>", logical, uri)
			continue
		}
		if prev, dup := out[name]; dup {
			t.Errorf("%s and %s share CodeUri %s (SAM would build them once)", prev.logical, logical, uri)
		}
		env := map[string]any{}
		for k, v := range dig(tpl.Globals, "Function", "Environment", "Variables") {
			env[k] = v
		}
		for k, v := range dig(r.Properties, "Environment", "Variables") {
			env[k] = v
		}
		out[name] = function{logical: logical, name: name, res: r, env: env}
	}
	return out
}

// dig follows keys through nested JSON objects; nil when one is missing.
func dig(v any, keys ...string) map[string]any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	m, _ := v.(map[string]any)
	return m
}

// ref is the logical name an intrinsic value points at: {"Ref": x} or {"Fn::GetAtt": [x, …]}.
func ref(v any) string {
	m, _ := v.(map[string]any)
	if r, ok := m["Ref"].(string); ok {
		return r
	}
	if ga, ok := m["Fn::GetAtt"].([]any); ok && len(ga) > 0 {
		s, _ := ga[0].(string)
		return s
	}
	return ""
}

// branches resolves Fn::If to both of its values (AWS::NoValue dropped); other values are
// their own only branch.
func branches(v any) []any {
	m, _ := v.(map[string]any)
	if args, ok := m["Fn::If"].([]any); ok && len(m) == 1 && len(args) == 3 {
		var out []any
		for _, b := range args[1:] {
			if ref(b) != "AWS::NoValue" {
				out = append(out, branches(b)...)
			}
		}
		return out
	}
	return []any{v}
}

func TestTheTemplateDeclaresEveryFunctionOfTheContractAndNoOther(t *testing.T) {
	tpl := load(t)
	fns := functions(t, tpl)
	var got, want []string
	for name := range fns {
		got = append(got, name)
	}
	for name := range contract {
		want = append(want, name)
	}
	sort.Strings(got)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("functions in template.yaml = %v, the contract names %v", got, want)
	}
	g := dig(tpl.Globals, "Function")
	for key, wantValue := range map[string]any{"Runtime": "provided.al2023", "Handler": "bootstrap"} {
		if g[key] != wantValue {
			t.Errorf("Globals.Function.%s = %v, want %v", key, g[key], wantValue)
		}
	}
	if arch, _ := g["Architectures"].([]any); len(arch) != 1 || arch[0] != "arm64" {
		t.Errorf("Globals.Function.Architectures = %v, want [arm64]", g["Architectures"])
	}
	for name, f := range fns {
		if got := f.res.Metadata["BuildMethod"]; got != "go1.x" {
			t.Errorf("%s: Metadata.BuildMethod = %v, want go1.x", name, got)
		}
		for _, key := range []string{"Runtime", "Handler", "Architectures"} {
			if v, ok := f.res.Properties[key]; ok {
				t.Errorf("%s overrides Globals' %s with %v", name, key, v)
			}
		}
		group := ref(dig(f.res.Properties, "LoggingConfig")["LogGroup"])
		if lg := tpl.Resources[group]; lg.Type != "AWS::Logs::LogGroup" {
			t.Errorf("%s: LoggingConfig.LogGroup is %q, not a log group of the template", name, group)
		} else if ref(lg.Properties["RetentionInDays"]) != "LogRetentionDays" {
			t.Errorf("%s: log group %s keeps logs for %v, not the LogRetentionDays parameter", name, group, lg.Properties["RetentionInDays"])
		}
	}
}

func TestEveryVariableOfTheContractIsSetForItsFunction(t *testing.T) {
	tpl := load(t)
	for name, f := range functions(t, tpl) {
		c := contract[name]
		for _, v := range append(append(append([]string{}, c.required...), c.optional...), everyFunction) {
			value, ok := f.env[v]
			if !ok {
				t.Errorf("%s reads %s; the template does not set it", name, v)
				continue
			}
			for _, b := range branches(value) {
				target := ref(b)
				kind := "Parameter"
				if _, isParam := tpl.Parameters[target]; !isParam {
					kind = tpl.Resources[target].Type
				}
				if want := refersTo[v]; target == "" || kind != want {
					t.Errorf("%s: %s = %v, want a reference to a %s of the template", name, v, b, want)
				}
			}
			if slices.Contains(c.required, v) && len(branches(value)) != 1 {
				t.Errorf("%s: %s is required but set only under a condition: %v", name, v, value)
			}
		}
	}
}

// readsEnv finds the variables a function's own code reads: os.Getenv / os.LookupEnv of a
// literal, and secrets resolved by name (secret.Resolver reads NAME_PARAM on AWS).
var (
	getenvCall  = regexp.MustCompile(`(?:Getenv|LookupEnv)\(\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*\)`)
	resolveCall = regexp.MustCompile(`\.Resolve\(\s*[A-Za-z_.()]+\s*,([^)]*)\)`)
	quoted      = regexp.MustCompile(`"([A-Z][A-Z0-9_]*)"`)
)

// providedByLambda are variables the Lambda runtime sets (and AWS_ENDPOINT_URL, which only
// tests set): a function may read them without the template.
func providedByLambda(v string) bool {
	return strings.HasPrefix(v, "AWS_") || strings.HasPrefix(v, "_") || strings.HasPrefix(v, "LAMBDA_") || v == "TZ"
}

func TestEveryVariableAFunctionReadsIsSetByTheTemplate(t *testing.T) {
	tpl := load(t)
	root := repoRoot(t)
	for name, f := range functions(t, tpl) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(root, "functions", name)
			files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
			if len(files) == 0 {
				t.Skipf("functions/%s has no Go files in this checkout yet (the functions land on another branch); rerun after merging", name)
			}
			reads := map[string]bool{}
			for _, file := range files {
				if strings.HasSuffix(file, "_test.go") {
					continue
				}
				src, err := os.ReadFile(file)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range getenvCall.FindAllSubmatch(src, -1) {
					reads[string(m[1])] = true
				}
				for _, m := range resolveCall.FindAllSubmatch(src, -1) {
					for _, q := range quoted.FindAllSubmatch(m[1], -1) {
						reads[string(q[1])+"_PARAM"] = true
					}
				}
			}
			for v := range reads {
				if _, set := f.env[v]; !set && !providedByLambda(v) {
					t.Errorf("functions/%s reads %s; template.yaml does not set it for %s", name, v, f.logical)
				}
			}
		})
	}
}

// maxBinary is the size an arm64 build of a function must stay under (issue 6).
const maxBinary = 15 << 20

func TestEveryFunctionBuildsForLambdaOnArm64(t *testing.T) {
	tpl := load(t)
	root := repoRoot(t)
	out := t.TempDir()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool on PATH to build the functions with: %v", err)
	}
	for name := range functions(t, tpl) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if files, _ := filepath.Glob(filepath.Join(root, "functions", name, "*.go")); len(files) == 0 {
				t.Skipf("functions/%s has no Go files in this checkout yet (the functions land on another branch); rerun after merging", name)
			}
			bin := filepath.Join(out, name, "bootstrap")
			// The flags sam build is given through GOFLAGS (README).
			cmd := exec.Command(goTool, "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", bin, "./functions/"+name)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
			if msg, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("GOOS=linux GOARCH=arm64 go build -tags lambda.norpc ./functions/%s: %v\n%s", name, err, msg)
			}
			st, err := os.Stat(bin)
			if err != nil {
				t.Fatal(err)
			}
			if st.Size() >= maxBinary {
				t.Errorf("functions/%s builds to %.1f MB; it must stay under %d MB", name, float64(st.Size())/(1<<20), maxBinary>>20)
			}
		})
	}
}

// dataServices are the services whose actions read or write data: a grant of one of their
// actions must name its resources.
var dataServices = []string{"dynamodb", "sqs", "sns", "ssm", "secretsmanager", "kms", "s3", "logs"}

// onEveryResource are the data actions AWS authorizes only on "*" that a function of the
// template needs: a grant of these alone on exactly "*" is not broad, nothing else is allowed.
//
//   - dynamodb:ListStreams: Lambda's DynamoDB stream event source mapping calls it with the
//     execution role (the Lambda developer guide's execution role permissions for DynamoDB:
//     DescribeStream, GetRecords, GetShardIterator, ListStreams; a mapping without it is refused
//     with "Please ensure the role can perform the GetRecords, GetShardIterator, DescribeStream,
//     and ListStreams Actions on your stream in IAM", aws-amplify/amplify-js#4793), and ListStreams
//     supports no resource-level permission: the Service Authorization Reference for DynamoDB
//     lists no resource type for it, so only "*" grants it (aws/aws-cdk#10631, which changed
//     grantTableListStreams from the stream's ARN to "*" for that reason; aws/aws-cdk#34575).
//     The other three actions take the stream's ARN.
var onEveryResource = []string{"dynamodb:ListStreams"}

// broadGrants lists the statements of a policy document that allow a data action (or any
// action) on every resource, on a resource pattern with a wildcard, or through NotResource, and
// wildcard data actions. Fn::If branches are both checked. A statement granting only actions of
// onEveryResource, on exactly "*", is not broad.
func broadGrants(doc any) []string {
	var found []string
	for _, st := range list(dig(doc)["Statement"]) {
		for _, s := range branches(st) {
			stmt, _ := s.(map[string]any)
			if stmt["Effect"] != "Allow" {
				continue
			}
			sid, _ := stmt["Sid"].(string)
			data := false
			for _, a := range list(stmt["Action"]) {
				action, _ := a.(string)
				service, verb, _ := strings.Cut(action, ":")
				if action == "*" || slices.Contains(dataServices, service) {
					data = true
					if strings.Contains(verb, "*") || action == "*" {
						found = append(found, fmt.Sprintf("statement %q: wildcard action %s", sid, action))
					}
				}
			}
			if !data {
				continue
			}
			if onlyOnEveryResource(stmt) {
				continue
			}
			if _, ok := stmt["NotResource"]; ok {
				found = append(found, fmt.Sprintf("statement %q: NotResource grants every other resource", sid))
			}
			if _, ok := stmt["Resource"]; !ok {
				found = append(found, fmt.Sprintf("statement %q: no Resource", sid))
			}
			for _, r := range list(stmt["Resource"]) {
				for _, lit := range literals(r) {
					if strings.Contains(lit, "*") {
						found = append(found, fmt.Sprintf("statement %q: resource %q has a wildcard", sid, lit))
					}
				}
			}
		}
	}
	return found
}

// onlyOnEveryResource reports whether stmt grants nothing but actions of onEveryResource, on
// exactly the resource "*".
func onlyOnEveryResource(stmt map[string]any) bool {
	actions, resources := list(stmt["Action"]), list(stmt["Resource"])
	if len(actions) == 0 || len(resources) != 1 || resources[0] != "*" {
		return false
	}
	for _, a := range actions {
		if action, _ := a.(string); !slices.Contains(onEveryResource, action) {
			return false
		}
	}
	return true
}

// list is v as a list: a JSON array as is, a single value as a list of one, Fn::If as its
// branches.
func list(v any) []any {
	var out []any
	for _, b := range branches(v) {
		if l, ok := b.([]any); ok {
			out = append(out, l...)
		} else if b != nil {
			out = append(out, b)
		}
	}
	return out
}

// literals are the literal strings of a value: the string itself, a Fn::Sub's pattern, the
// strings of a Fn::Join; references contribute none.
func literals(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, literals(e)...)
		}
		return out
	case map[string]any:
		if sub, ok := x["Fn::Sub"]; ok {
			if l, ok := sub.([]any); ok && len(l) > 0 {
				return literals(l[0])
			}
			return literals(sub)
		}
		if join, ok := x["Fn::Join"].([]any); ok && len(join) == 2 {
			return literals(join[1])
		}
		if _, ok := x["Fn::If"]; ok {
			var out []string
			for _, b := range branches(x) {
				out = append(out, literals(b)...)
			}
			return out
		}
	}
	return nil
}

func TestTheBroadGrantCheckFindsWildcardsOnDataActions(t *testing.T) {
	doc := func(stmt string) any {
		var v any
		if err := json.Unmarshal([]byte(`{"Statement": [`+stmt+`]}`), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name  string
		stmt  string
		broad bool
	}{
		{"a table named by reference is fine", `{"Effect":"Allow","Action":["dynamodb:GetItem"],"Resource":{"Fn::GetAtt":["Table","Arn"]}}`, false},
		{"an index named by Sub is fine", `{"Effect":"Allow","Action":"dynamodb:Query","Resource":{"Fn::Sub":"${Table.Arn}/index/risk"}}`, false},
		{"every resource is broad", `{"Effect":"Allow","Action":"sqs:SendMessage","Resource":"*"}`, true},
		{"one star among named resources is broad", `{"Effect":"Allow","Action":"sns:Publish","Resource":[{"Ref":"Topic"},"*"]}`, true},
		{"a pattern with a star is broad", `{"Effect":"Allow","Action":"dynamodb:PutItem","Resource":{"Fn::Sub":"arn:aws:dynamodb:*:*:table/${Table}"}}`, true},
		{"a star in one branch of Fn::If is broad", `{"Fn::If":["C",{"Effect":"Allow","Action":"ssm:GetParameter","Resource":"arn:aws:ssm:us-east-1:1:parameter/*"},{"Ref":"AWS::NoValue"}]}`, true},
		{"a wildcard data action is broad", `{"Effect":"Allow","Action":"dynamodb:*","Resource":{"Fn::GetAtt":["Table","Arn"]}}`, true},
		{"every action is broad", `{"Effect":"Allow","Action":"*","Resource":"*"}`, true},
		{"NotResource is broad", `{"Effect":"Allow","Action":"sqs:SendMessage","NotResource":"arn:aws:sqs:us-east-1:1:q"}`, true},
		{"a non-data action on every resource is not this check's concern", `{"Effect":"Allow","Action":"xray:PutTraceSegments","Resource":"*"}`, false},
		{"a Deny on every resource is fine", `{"Effect":"Deny","Action":"dynamodb:DeleteTable","Resource":"*"}`, false},
		{"ListStreams alone on every resource is what a stream mapping needs", `{"Effect":"Allow","Action":"dynamodb:ListStreams","Resource":"*"}`, false},
		{"ListStreams next to another data action on every resource is broad", `{"Effect":"Allow","Action":["dynamodb:ListStreams","dynamodb:GetRecords"],"Resource":"*"}`, true},
		{"ListStreams on every resource and another is broad", `{"Effect":"Allow","Action":"dynamodb:ListStreams","Resource":["*",{"Fn::GetAtt":["Table","StreamArn"]}]}`, true},
		{"ListStreams on a stream pattern is broad (and grants nothing)", `{"Effect":"Allow","Action":"dynamodb:ListStreams","Resource":{"Fn::Sub":"${Table.Arn}/stream/*"}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found := broadGrants(doc(tt.stmt))
			if got := len(found) > 0; got != tt.broad {
				t.Errorf("broad = %v (%v), want %v", got, found, tt.broad)
			}
		})
	}
}

func TestNoPolicyGrantsADataActionOnEveryResource(t *testing.T) {
	tpl := load(t)
	roles := 0
	for logical, r := range tpl.Resources {
		var docs []any
		switch r.Type {
		case "AWS::IAM::Role":
			roles++
			if arns, ok := r.Properties["ManagedPolicyArns"]; ok {
				t.Errorf("%s attaches managed policies %v; their statements cannot be checked here", logical, arns)
			}
			for _, p := range list(r.Properties["Policies"]) {
				docs = append(docs, dig(p)["PolicyDocument"])
			}
		case "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy":
			docs = append(docs, r.Properties["PolicyDocument"])
		case "AWS::Serverless::Function":
			// Without a Role of its own, SAM attaches managed policies such as
			// AWSLambdaSQSQueueExecutionRole, which allow their actions on "*".
			if role := ref(r.Properties["Role"]); tpl.Resources[role].Type != "AWS::IAM::Role" {
				t.Errorf("%s: Role = %v, want a role of the template (else SAM attaches managed policies on *)", logical, r.Properties["Role"])
			}
			if p, ok := r.Properties["Policies"]; ok {
				t.Errorf("%s: Policies %v are ignored next to Role; put them in the role", logical, p)
			}
		}
		for _, doc := range docs {
			for _, f := range broadGrants(doc) {
				t.Errorf("%s: %s", logical, f)
			}
		}
	}
	if roles < len(contract) {
		t.Errorf("%d IAM roles for %d functions; each function needs a role of its own", roles, len(contract))
	}
}

func TestTheTableIsTheOneTheStoreCreates(t *testing.T) {
	tpl := load(t)
	var table resource
	for _, r := range tpl.Resources {
		if r.Type == "AWS::DynamoDB::Table" {
			table = r
		}
	}
	want := dynamo.TableInput("t")
	// The store's layout in the template's words, so the two compare as JSON.
	keys := func(k []any) string { b, _ := json.Marshal(k); return string(b) }
	var wantAttrs []any
	for _, a := range want.AttributeDefinitions {
		wantAttrs = append(wantAttrs, map[string]any{"AttributeName": aws.ToString(a.AttributeName), "AttributeType": string(a.AttributeType)})
	}
	schema := func(ks []struct{ name, kind string }) []any {
		var out []any
		for _, k := range ks {
			out = append(out, map[string]any{"AttributeName": k.name, "KeyType": k.kind})
		}
		return out
	}
	var wantKeys []struct{ name, kind string }
	for _, k := range want.KeySchema {
		wantKeys = append(wantKeys, struct{ name, kind string }{aws.ToString(k.AttributeName), string(k.KeyType)})
	}
	p := table.Properties
	if got, w := keys(sortedAttrs(list(p["AttributeDefinitions"]))), keys(sortedAttrs(wantAttrs)); got != w {
		t.Errorf("AttributeDefinitions = %s, the store's %s", got, w)
	}
	if got, w := keys(list(p["KeySchema"])), keys(schema(wantKeys)); got != w {
		t.Errorf("KeySchema = %s, the store's %s", got, w)
	}
	if got := p["BillingMode"]; got != string(want.BillingMode) {
		t.Errorf("BillingMode = %v, the store's %s", got, want.BillingMode)
	}
	if got := dig(p, "StreamSpecification")["StreamViewType"]; got != string(want.StreamSpecification.StreamViewType) {
		t.Errorf("StreamViewType = %v, the store's %s", got, want.StreamSpecification.StreamViewType)
	}
	gsis := map[string]map[string]any{}
	for _, g := range list(p["GlobalSecondaryIndexes"]) {
		name, _ := dig(g)["IndexName"].(string)
		gsis[name] = dig(g)
	}
	if len(gsis) != len(want.GlobalSecondaryIndexes) {
		t.Errorf("%d GSIs, the store has %d", len(gsis), len(want.GlobalSecondaryIndexes))
	}
	for _, w := range want.GlobalSecondaryIndexes {
		name := aws.ToString(w.IndexName)
		g, ok := gsis[name]
		if !ok {
			t.Errorf("GSI %s missing", name)
			continue
		}
		var wk []struct{ name, kind string }
		for _, k := range w.KeySchema {
			wk = append(wk, struct{ name, kind string }{aws.ToString(k.AttributeName), string(k.KeyType)})
		}
		if got, want := keys(list(g["KeySchema"])), keys(schema(wk)); got != want {
			t.Errorf("GSI %s KeySchema = %s, the store's %s", name, got, want)
		}
		proj := dig(g, "Projection")
		if got := proj["ProjectionType"]; got != string(w.Projection.ProjectionType) {
			t.Errorf("GSI %s projection = %v, the store's %s", name, got, w.Projection.ProjectionType)
		}
		var nonKey []string
		for _, a := range list(proj["NonKeyAttributes"]) {
			nonKey = append(nonKey, fmt.Sprint(a))
		}
		if !slices.Equal(nonKey, w.Projection.NonKeyAttributes) {
			t.Errorf("GSI %s projects %v, the store %v", name, nonKey, w.Projection.NonKeyAttributes)
		}
	}
	if ttl := dig(p, "TimeToLiveSpecification"); ttl["AttributeName"] != "expires" || ttl["Enabled"] != true {
		t.Errorf("TTL = %v, want enabled on expires (docs/DYNAMO.md)", ttl)
	}
	if pitr := dig(p, "PointInTimeRecoverySpecification"); pitr["PointInTimeRecoveryEnabled"] != true {
		t.Errorf("point-in-time recovery = %v, want enabled", pitr)
	}
	param := ref(p["DeletionProtectionEnabled"])
	if def := tpl.Parameters[param]["Default"]; param == "" || def != "true" {
		t.Errorf("DeletionProtectionEnabled = %v, want a parameter defaulting to true (its default is %v)", p["DeletionProtectionEnabled"], def)
	}
}

// sortedAttrs orders attribute definitions by name.
func sortedAttrs(a []any) []any {
	out := slices.Clone(a)
	sort.Slice(out, func(i, j int) bool {
		return fmt.Sprint(dig(out[i])["AttributeName"]) < fmt.Sprint(dig(out[j])["AttributeName"])
	})
	return out
}

// events are a function's SAM events by type.
func events(f function) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, e := range dig(f.res.Properties, "Events") {
		typ, _ := dig(e)["Type"].(string)
		out[typ] = append(out[typ], dig(e, "Properties"))
	}
	return out
}

func TestEachFunctionIsTriggeredAsTheContractSays(t *testing.T) {
	tpl := load(t)
	fns := functions(t, tpl)
	for name, f := range fns {
		var routes []string
		for _, e := range events(f)["HttpApi"] {
			route := fmt.Sprintf("%v %v", e["Method"], e["Path"])
			routes = append(routes, route)
			auth := dig(e, "Auth")["Authorizer"]
			if signed := contract[name].signed; signed && auth != "AWS_IAM" {
				t.Errorf("%s: %s has authorizer %v, want AWS_IAM", name, route, auth)
			} else if !signed && auth != nil {
				t.Errorf("%s: %s has authorizer %v; a webhook verifies its sender itself", name, route, auth)
			}
			if ref(e["ApiId"]) == "" {
				t.Errorf("%s: %s is not on the template's HttpApi", name, route)
			}
		}
		sort.Strings(routes)
		want := slices.Sorted(slices.Values(contract[name].routes))
		if !slices.Equal(routes, want) {
			t.Errorf("%s: routes %v, the contract's %v", name, routes, want)
		}
	}
	if auth := dig(tpl.Resources["HttpApi"].Properties, "Auth"); auth["DefaultAuthorizer"] != nil {
		t.Errorf("HttpApi has a default authorizer %v; the webhooks must stay open", auth["DefaultAuthorizer"])
	}

	// product-aggregate: the product queue, parameterized batching, failures per message.
	sqs := events(fns["product-aggregate"])["SQS"]
	if len(sqs) != 1 {
		t.Fatalf("product-aggregate has %d SQS events, want 1", len(sqs))
	}
	product := sqs[0]
	if q := ref(product["Queue"]); q != ref(fns["product-webhook"].env["PRODUCT_QUEUE_URL"]) {
		t.Errorf("product-aggregate reads queue %s, product-webhook writes %s", q, ref(fns["product-webhook"].env["PRODUCT_QUEUE_URL"]))
	}
	for _, key := range []string{"BatchSize", "MaximumBatchingWindowInSeconds"} {
		if _, isParam := tpl.Parameters[ref(product[key])]; !isParam {
			t.Errorf("product-aggregate %s = %v, want a parameter", key, product[key])
		}
	}
	if got := list(product["FunctionResponseTypes"]); !slices.Contains(got, any("ReportBatchItemFailures")) {
		t.Errorf("product-aggregate FunctionResponseTypes = %v, want ReportBatchItemFailures", got)
	}

	// publisher: the table's stream, new outbox items only, bounded retries, a failure queue.
	streams := events(fns["publisher"])["DynamoDB"]
	if len(streams) != 1 {
		t.Fatalf("publisher has %d DynamoDB events, want 1", len(streams))
	}
	s := streams[0]
	if ga, _ := dig(s)["Stream"].(map[string]any)["Fn::GetAtt"].([]any); len(ga) != 2 || tpl.Resources[fmt.Sprint(ga[0])].Type != "AWS::DynamoDB::Table" || ga[1] != "StreamArn" {
		t.Errorf("publisher Stream = %v, want the table's StreamArn", s["Stream"])
	}
	var patterns []any
	for _, f := range list(dig(s, "FilterCriteria")["Filters"]) {
		var p any
		if err := json.Unmarshal([]byte(fmt.Sprint(dig(f)["Pattern"])), &p); err != nil {
			t.Errorf("publisher filter pattern is not JSON: %v", err)
		}
		patterns = append(patterns, p)
	}
	var outbox any // docs/DYNAMO.md
	_ = json.Unmarshal([]byte(`{"eventName": ["INSERT"], "dynamodb": {"Keys": {"pk": {"S": [{"prefix": "O#"}]}}}}`), &outbox)
	if got, _ := json.Marshal(patterns); string(got) != mustJSON([]any{outbox}) {
		t.Errorf("publisher filters %s, want only %s", got, mustJSON(outbox))
	}
	if s["BisectBatchOnFunctionError"] != true {
		t.Errorf("publisher BisectBatchOnFunctionError = %v, want true", s["BisectBatchOnFunctionError"])
	}
	for _, key := range []string{"MaximumRetryAttempts", "MaximumRecordAgeInSeconds"} {
		param := tpl.Parameters[ref(s[key])]
		if max, _ := param["MaxValue"].(float64); param == nil || max <= 0 {
			t.Errorf("publisher %s = %v, want a parameter with a MaxValue (bounded)", key, s[key])
		}
	}
	if got := list(s["FunctionResponseTypes"]); !slices.Contains(got, any("ReportBatchItemFailures")) {
		t.Errorf("publisher FunctionResponseTypes = %v, want ReportBatchItemFailures", got)
	}
	onFailure := dig(s, "DestinationConfig", "OnFailure")
	if tpl.Resources[ref(onFailure["Destination"])].Type != "AWS::SQS::Queue" || onFailure["Type"] != "SQS" {
		t.Errorf("publisher on-failure destination = %v, want an SQS queue of the template", onFailure)
	}

	// recompute: the schedule and its own queue.
	rc := events(fns["recompute"])
	if sch := rc["Schedule"]; len(sch) != 1 || ref(sch[0]["Schedule"]) != "RecomputeSchedule" {
		t.Errorf("recompute schedules = %v, want one, from the RecomputeSchedule parameter", sch)
	}
	if q := rc["SQS"]; len(q) != 1 || ref(q[0]["Queue"]) != ref(fns["recompute"].env["RECOMPUTE_QUEUE_URL"]) {
		t.Errorf("recompute SQS events = %v, want one on the queue it enqueues to", q)
	}
	if q := rc["SQS"]; len(q) == 1 && !slices.Contains(list(q[0]["FunctionResponseTypes"]), any("ReportBatchItemFailures")) {
		t.Errorf("recompute FunctionResponseTypes = %v, want ReportBatchItemFailures (else a failed job is deleted, not retried)", q[0]["FunctionResponseTypes"])
	}

	// Every work queue sends what it cannot deliver to a dead-letter queue.
	for _, q := range []string{ref(product["Queue"]), ref(rc["SQS"][0]["Queue"])} {
		redrive := dig(tpl.Resources[q].Properties, "RedrivePolicy")
		if tpl.Resources[ref(redrive["deadLetterTargetArn"])].Type != "AWS::SQS::Queue" || tpl.Parameters[ref(redrive["maxReceiveCount"])] == nil {
			t.Errorf("queue %s redrive = %v, want a DLQ and a maxReceiveCount parameter", q, redrive)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestAlarmsWatchEveryFunctionAndEveryDeadLetterQueue(t *testing.T) {
	tpl := load(t)
	type watch struct{ metric, target string }
	alarmed := map[watch]bool{}
	for _, r := range tpl.Resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		for _, d := range list(r.Properties["Dimensions"]) {
			alarmed[watch{fmt.Sprint(r.Properties["MetricName"]), ref(dig(d)["Value"])}] = true
		}
	}
	fns := functions(t, tpl)
	for name, f := range fns {
		for _, metric := range []string{"Errors", "Throttles"} {
			if !alarmed[watch{metric, f.logical}] {
				t.Errorf("no %s alarm on %s", metric, name)
			}
		}
	}
	if !alarmed[watch{"IteratorAge", fns["publisher"].logical}] {
		t.Error("no IteratorAge alarm on the publisher")
	}
	var dlqs []string
	for _, r := range tpl.Resources {
		if redrive := dig(r.Properties, "RedrivePolicy"); redrive != nil {
			dlqs = append(dlqs, ref(redrive["deadLetterTargetArn"]))
		}
		if r.Type == "AWS::Serverless::Function" {
			for _, e := range events(function{res: r})["DynamoDB"] {
				dlqs = append(dlqs, ref(dig(e, "DestinationConfig", "OnFailure")["Destination"]))
			}
		}
	}
	if len(dlqs) != 3 {
		t.Errorf("dead-letter queues and failure destinations = %v, want 3 (product, recompute, publisher)", dlqs)
	}
	for _, q := range dlqs {
		if !alarmed[watch{"ApproximateNumberOfMessagesVisible", q}] {
			t.Errorf("no depth alarm on %s", q)
		}
	}
}

func TestTheOutputsGiveTheURLsAndTheTopic(t *testing.T) {
	tpl := load(t)
	for name, wantIn := range map[string]string{
		"StripeWebhookUrl":  "/webhooks/stripe",
		"ProductWebhookUrl": "/webhooks/product",
		"ReadApiUrl":        "/accounts",
	} {
		lits := literals(tpl.Outputs[name]["Value"])
		if len(lits) != 1 || !strings.HasPrefix(lits[0], "https://${HttpApi}.execute-api.") || !strings.HasSuffix(lits[0], wantIn) {
			t.Errorf("output %s = %v, want the HttpApi's URL ending in %s", name, tpl.Outputs[name]["Value"], wantIn)
		}
	}
	if tpl.Resources[ref(tpl.Outputs["TopicArn"]["Value"])].Type != "AWS::SNS::Topic" {
		t.Errorf("output TopicArn = %v, want the topic", tpl.Outputs["TopicArn"]["Value"])
	}
}

func TestParametersNameSecretsAndNeverHoldThem(t *testing.T) {
	tpl := load(t)
	for name, p := range tpl.Parameters {
		lower := strings.ToLower(name)
		if !strings.Contains(lower, "secret") && !strings.Contains(lower, "apikey") {
			continue
		}
		if !strings.HasSuffix(name, "Param") && !strings.HasSuffix(name, "KmsKeyArn") {
			t.Errorf("parameter %s looks like a secret value; parameters hold names (…Param)", name)
		}
		if p["NoEcho"] == true {
			t.Errorf("parameter %s is NoEcho, as a secret value would be; it should hold a name", name)
		}
		if pattern, _ := p["AllowedPattern"].(string); pattern == "" {
			t.Errorf("parameter %s has no AllowedPattern; a value pasted by mistake would deploy", name)
		} else if re, err := regexp.Compile(pattern); err != nil {
			t.Errorf("parameter %s AllowedPattern: %v", name, err)
		} else if re.MatchString("whsec_0123456789abcdef") || re.MatchString("sk_live_0123456789") {
			t.Errorf("parameter %s accepts a secret value", name)
		}
	}
}

// timeout is a function's timeout in seconds: its own, else Globals'.
func timeout(tpl template, f function) float64 {
	if t, ok := f.res.Properties["Timeout"].(float64); ok {
		return t
	}
	t, _ := dig(tpl.Globals, "Function")["Timeout"].(float64)
	return t
}

func TestQueuesOutwaitTheirConsumersAndRecomputeFinishesInsideItsTimeout(t *testing.T) {
	tpl := load(t)
	fns := functions(t, tpl)
	for name, f := range fns {
		for _, e := range events(f)["SQS"] {
			q := ref(e["Queue"])
			// Lambda refuses a mapping whose queue would show a message again while the
			// function still works on it.
			vis, _ := tpl.Resources[q].Properties["VisibilityTimeout"].(float64)
			if vis < timeout(tpl, f) {
				t.Errorf("%s: queue %s hides a message for %v s, less than the function's %v s timeout", name, q, vis, timeout(tpl, f))
			}
		}
	}
	budget := tpl.Parameters[ref(fns["recompute"].env["RECOMPUTE_BUDGET_SECONDS"])]
	if max, _ := budget["MaxValue"].(float64); max == 0 || max >= timeout(tpl, fns["recompute"]) {
		t.Errorf("RECOMPUTE_BUDGET_SECONDS may reach %v s, recompute's timeout is %v s: the worker would be cut off before re-enqueuing its cursor", budget["MaxValue"], timeout(tpl, fns["recompute"]))
	}
	shards := tpl.Parameters[ref(fns["recompute"].env["RECOMPUTE_SHARDS"])]
	for _, v := range list(shards["AllowedValues"]) {
		if n, _ := v.(float64); n < 1 || 256%int(n) != 0 {
			t.Errorf("RECOMPUTE_SHARDS allows %v, which does not divide the store's 256 shards", v)
		}
	}
	if len(list(shards["AllowedValues"])) == 0 {
		t.Error("RECOMPUTE_SHARDS takes any number; it must divide 256")
	}
}

// TestTheTemplatesContractIsTheFunctionsOwn keeps this test's contract and the functions'
// (function.Variables, what function.Load reads) from drifting apart.
func TestTheTemplatesContractIsTheFunctionsOwn(t *testing.T) {
	if len(contract) != len(fns.Variables) {
		t.Errorf("%d functions here, %d in function.Variables", len(contract), len(fns.Variables))
	}
	for name, vars := range fns.Variables {
		c, ok := contract[name]
		if !ok {
			t.Errorf("function %s is not in the template's contract", name)
			continue
		}
		here := append(append([]string(nil), c.required...), c.optional...)
		var theirs []string
		for _, v := range vars {
			theirs = append(theirs, v.Name)
		}
		slices.Sort(here)
		slices.Sort(theirs)
		if !slices.Equal(here, theirs) {
			t.Errorf("%s reads %v, the template's contract says %v", name, theirs, here)
		}
	}
}

// grants are the (action, resource) pairs a role's policies allow, resources as their logical
// reference ("Table.StreamArn", "Table.Arn", the Sub pattern) or literal.
func grants(role resource) map[string][]string {
	out := map[string][]string{}
	for _, p := range list(role.Properties["Policies"]) {
		for _, st := range list(dig(dig(p)["PolicyDocument"])["Statement"]) {
			for _, b := range branches(st) {
				stmt, _ := b.(map[string]any)
				if stmt["Effect"] != "Allow" {
					continue
				}
				for _, a := range list(stmt["Action"]) {
					for _, r := range list(stmt["Resource"]) {
						name := fmt.Sprint(r)
						if ga, ok := dig(r)["Fn::GetAtt"].([]any); ok && len(ga) == 2 {
							name = fmt.Sprintf("%v.%v", ga[0], ga[1])
						} else if lits := literals(r); len(lits) == 1 {
							name = lits[0]
						} else if ref(r) != "" {
							name = ref(r)
						}
						out[fmt.Sprint(a)] = append(out[fmt.Sprint(a)], name)
					}
				}
			}
		}
	}
	return out
}

func TestThePublisherMayReadItsStreamAndSweepOnlyTheOutboxIndex(t *testing.T) {
	tpl := load(t)
	fns := functions(t, tpl)
	pub := fns["publisher"]
	g := grants(tpl.Resources[ref(pub.res.Properties["Role"])])
	for action, want := range map[string][]string{
		// Lambda's stream event source mapping (see onEveryResource).
		"dynamodb:DescribeStream":   {"Table.StreamArn"},
		"dynamodb:GetRecords":       {"Table.StreamArn"},
		"dynamodb:GetShardIterator": {"Table.StreamArn"},
		"dynamodb:ListStreams":      {"*"},
		// The sweep: the outbox index only, never the table or another index.
		"dynamodb:Query": {"${Table.Arn}/index/outbox"},
	} {
		if got := g[action]; !slices.Equal(got, want) {
			t.Errorf("publisher role grants %s on %v, want exactly %v", action, got, want)
		}
	}

	sweeps := events(pub)["Schedule"]
	if len(sweeps) != 1 {
		t.Fatalf("publisher has %d schedules, want one (the outbox sweep)", len(sweeps))
	}
	param := tpl.Parameters[ref(sweeps[0]["Schedule"])]
	if def, _ := param["Default"].(string); !strings.HasPrefix(def, "rate(") && !strings.HasPrefix(def, "cron(") {
		t.Errorf("the sweep's schedule is %v, want a parameter with a schedule expression as its default", sweeps[0]["Schedule"])
	}
	if pattern, _ := param["AllowedPattern"].(string); pattern == "" {
		t.Error("the sweep's schedule parameter takes any string; a typo would fail the deploy late")
	} else if re := regexp.MustCompile(pattern); !re.MatchString(fmt.Sprint(param["Default"])) || re.MatchString("hourly") {
		t.Errorf("the sweep's schedule pattern %s refuses its default or accepts \"hourly\"", pattern)
	}
	if len(events(pub)["DynamoDB"]) != 1 {
		t.Error("the publisher lost its stream trigger next to the schedule")
	}
}

// ruleValue evaluates a CloudFormation rule expression (Ref, Fn::Equals, Fn::Not, Fn::And,
// Fn::Or, Fn::Contains) with parameters' values as strings, as CloudFormation compares them.
func ruleValue(t *testing.T, v any, params map[string]string) any {
	t.Helper()
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return fmt.Sprint(x)
	case bool:
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = ruleValue(t, e, params)
		}
		return out
	case map[string]any:
		if len(x) != 1 {
			break
		}
		for fn, arg := range x {
			args, _ := arg.([]any)
			truth := func(i int) bool { b, _ := ruleValue(t, args[i], params).(bool); return b }
			switch fn {
			case "Ref":
				v, ok := params[fmt.Sprint(arg)]
				if !ok {
					t.Fatalf("rule refers to %v, not a parameter given", arg)
				}
				return v
			case "Fn::Equals":
				return fmt.Sprint(ruleValue(t, args[0], params)) == fmt.Sprint(ruleValue(t, args[1], params))
			case "Fn::Not":
				return !truth(0)
			case "Fn::And", "Fn::Or":
				all, any_ := true, false
				for i := range args {
					all, any_ = all && truth(i), any_ || truth(i)
				}
				return (fn == "Fn::And" && all) || (fn == "Fn::Or" && any_)
			case "Fn::Contains":
				list, _ := ruleValue(t, args[0], params).([]any)
				return slices.Contains(list, ruleValue(t, args[1], params))
			}
		}
	}
	t.Fatalf("rule expression %v is not one this test evaluates", v)
	return nil
}

// refusedByRules returns the descriptions of the template's rule assertions that params fail.
func refusedByRules(t *testing.T, tpl template, params map[string]string) []string {
	t.Helper()
	var refused []string
	for name, rule := range tpl.Rules {
		if cond, ok := rule["RuleCondition"]; ok {
			if applies, _ := ruleValue(t, cond, params).(bool); !applies {
				continue
			}
		}
		for _, a := range list(rule["Assertions"]) {
			if ok, _ := ruleValue(t, dig(a)["Assert"], params).(bool); !ok {
				desc, _ := dig(a)["AssertDescription"].(string)
				if strings.TrimSpace(desc) == "" {
					t.Errorf("rule %s refuses without an AssertDescription: the deployer would not know why", name)
				}
				refused = append(refused, name+": "+desc)
			}
		}
	}
	return refused
}

// lambdaRefuses says why Lambda's CreateEventSourceMapping would refuse the mappings these
// parameters configure (Lambda API reference, EventSourceMappingConfiguration), or "".
func lambdaRefuses(p map[string]string) string {
	n := func(k string) int { v, _ := strconv.Atoi(p[k]); return v }
	if n("ProductBatchSize") > 10 && n("ProductBatchingWindowSeconds") < 1 {
		return "an SQS batch size over 10 needs a batching window of at least 1 s"
	}
	if age := n("PublisherMaxRecordAgeSeconds"); age != -1 && age < 60 {
		return "a maximum record age is -1 or at least 60 s"
	}
	return ""
}

func TestTheTemplateRefusesExactlyTheParameterCombinationsLambdaRefuses(t *testing.T) {
	tpl := load(t)
	// Every value the parameters' own constraints allow at the edges of Lambda's rules.
	for _, batch := range []string{"1", "10", "11", "100", "10000"} {
		for _, window := range []string{"0", "1", "5", "300"} {
			for _, age := range []string{"-1", "0", "59", "60", "604800"} {
				params := map[string]string{"ProductBatchSize": batch, "ProductBatchingWindowSeconds": window, "PublisherMaxRecordAgeSeconds": age}
				for name, p := range tpl.Parameters {
					if _, set := params[name]; !set {
						params[name] = fmt.Sprint(p["Default"])
					}
				}
				why := lambdaRefuses(params)
				refused := refusedByRules(t, tpl, params)
				if why != "" && len(refused) == 0 {
					t.Errorf("batch %s, window %s s, record age %s s: the template deploys it, Lambda refuses it (%s)", batch, window, age, why)
				}
				if why == "" && len(refused) > 0 {
					t.Errorf("batch %s, window %s s, record age %s s: Lambda accepts it, the template refuses it: %v", batch, window, age, refused)
				}
			}
		}
	}
	defaults := map[string]string{}
	for name, p := range tpl.Parameters {
		defaults[name] = fmt.Sprint(p["Default"])
	}
	if refused := refusedByRules(t, tpl, defaults); len(refused) > 0 {
		t.Errorf("the default parameters are refused: %v", refused)
	}
}

package function

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/churnsignal/churnsignal/shared/awstest"
)

// maxBinaryBytes is the size a function's bootstrap must stay under (stripped, trimmed).
const maxBinaryBytes = 15 << 20

// functionDirs returns the module root and the names of the directories under functions/.
func functionDirs(t *testing.T) (string, []string) {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return root, names
}

// build builds ./functions/name for goos/goarch as Lambda's provided.al2023 runtime runs it
// and returns the binary's path.
func build(t *testing.T, root, name, goos, goarch string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-ldflags=-s -w", "-trimpath", "-o", bin, "./functions/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./functions/%s for %s/%s: %v\n%s", name, goos, goarch, err, out)
	}
	return bin
}

func TestEveryFunctionBuildsForLambdaOnArm64UnderItsSizeLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds six binaries")
	}
	root, names := functionDirs(t)
	var known []string
	for fn := range Variables {
		known = append(known, fn)
	}
	slices.Sort(known)
	if !slices.Equal(names, known) {
		t.Errorf("functions/ holds %v, the contract (Variables) names %v", names, known)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			fi, err := os.Stat(build(t, root, name, "linux", "arm64"))
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("functions/%s: bootstrap for linux/arm64 is %.1f MB", name, float64(fi.Size())/(1<<20))
			if fi.Size() > maxBinaryBytes {
				t.Errorf("bootstrap is %d bytes, over %d", fi.Size(), maxBinaryBytes)
			}
		})
	}
}

func TestAFunctionStartedWithoutItsEnvironmentFailsInitNamingWhatIsMissing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds six binaries")
	}
	root, names := functionDirs(t)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(build(t, root, name, runtime.GOOS, runtime.GOARCH))
			cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // nothing of the function's own
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("run: %v, want it to exit with an error", err)
			}
			for _, v := range Variables[name] {
				if !v.Optional && !strings.Contains(stderr.String(), v.Name) {
					t.Errorf("init failure %q does not name %s", stderr.String(), v.Name)
				}
			}
			if !strings.Contains(stderr.String(), `"level":"ERROR"`) {
				t.Errorf("init failure %q is not a JSON log line at ERROR", stderr.String())
			}
		})
	}
}

func TestAFunctionWhoseSecretParameterDoesNotExistFailsInitNamingIt(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	awstest.Config(t)
	root, _ := functionDirs(t)
	cmd := exec.Command(build(t, root, StripeWebhook, runtime.GOOS, runtime.GOARCH))
	cmd.Env = append(os.Environ(), "TABLE_NAME=churnsignal", "STRIPE_WEBHOOK_SECRET_PARAM=/churnsignal/no-such-parameter")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if _, ok := cmd.Run().(*exec.ExitError); !ok {
		t.Fatal("the function started without its secret")
	}
	for _, want := range []string{"STRIPE_WEBHOOK_SECRET", "/churnsignal/no-such-parameter"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("init failure %q does not name %s", stderr.String(), want)
		}
	}
}

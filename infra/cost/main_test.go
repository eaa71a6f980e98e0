package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestTheCalculatorReadsMemoryAndBatchingFromTheTemplate(t *testing.T) {
	tpl, err := readTemplate("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for fn, want := range map[string]float64{"product-aggregate": 512, "recompute": 1024, "publisher": 256, "stripe-webhook": 256, "product-webhook": 256} {
		if got := tpl.memory[fn]; got != want {
			t.Errorf("%s has %v MB, want %v MB (its own MemorySize, else Globals')", fn, got, want)
		}
	}
	if got := tpl.param("ProductBatchSize"); got != 100 {
		t.Errorf("ProductBatchSize default = %d, want 100", got)
	}
	if got := tpl.param("ProductBatchingWindowSeconds"); got != 5 {
		t.Errorf("ProductBatchingWindowSeconds default = %d, want 5", got)
	}
}

func TestTheCalculatorPricesBothWorkloadsFromTheStoresOwnUnits(t *testing.T) {
	var out bytes.Buffer
	if err := run(&out, 100, -1, 0, "../../template.yaml"); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"(i) 1,000 accounts", "(ii) 100,000 accounts", "per million product messages", "per million Stripe events", "DynamoDB", "us-east-1"} {
		if !strings.Contains(s, want) {
			t.Errorf("the output lacks %q:\n%s", want, s)
		}
	}
	// A product commit of one message writes the account (2 KB: 2 units) and a marker, both
	// twice, and the account's risk row: 7 units, as CommitUnits prices it.
	if !strings.Contains(s, "7.00 / ") {
		t.Errorf("a one-message product commit is not priced at 7 write units:\n%s", s)
	}
}

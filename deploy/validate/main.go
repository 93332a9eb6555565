// Command validate decodes every object of rendered Kubernetes manifests strictly against the Go
// types of the API it names (Kubernetes, the Prometheus Operator, KEDA): an unknown, misspelt
// (field names are case-sensitive) or duplicated field fails, and so does a kind it does not know.
//
// Usage: validate FILE...   (multi-document YAML as `helm template` prints it; - reads stdin)
// Prints one line per object and exits 0 when every object decoded, 1 otherwise.
//
// Module versions (go.mod): k8s.io/api and apimachinery v0.37.2; the Prometheus Operator's
// monitoring API v0.95.2; KEDA v2.20.2, the newest whose go.mod this machine's Go (1.26) accepts
// (v2.21 asks for Go 1.27.4). KEDA's trigger metadata is a string map its Go types cannot check:
// scripts/check_deploy.py checks the keys the chart relies on.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	keda "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	monitoring "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The kinds a chart of this project may render, by apiVersion and kind.
var kinds = map[string]func() any{
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"apps/v1/StatefulSet":                     func() any { return &appsv1.StatefulSet{} },
	"apps/v1/Deployment":                      func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"monitoring.coreos.com/v1/PodMonitor":     func() any { return &monitoring.PodMonitor{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &monitoring.ServiceMonitor{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() any { return &monitoring.PrometheusRule{} },
	"keda.sh/v1alpha1/ScaledObject":           func() any { return &keda.ScaledObject{} },
	"keda.sh/v1alpha1/TriggerAuthentication":  func() any { return &keda.TriggerAuthentication{} },
}

// decode checks one YAML document; empty documents (comments only) return ok=false, err=nil.
func decode(doc []byte) (desc string, ok bool, err error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return "", false, err
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return "", false, nil
	}
	var head struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &head); err != nil {
		return "", false, err
	}
	desc = fmt.Sprintf("%s %s", head.Kind, head.Name)
	newObj, known := kinds[head.APIVersion+"/"+head.Kind]
	if !known {
		return desc, false, fmt.Errorf("apiVersion %q kind %q is not a kind this validator knows", head.APIVersion, head.Kind)
	}
	if head.Name == "" {
		return desc, false, errors.New("metadata.name is empty")
	}
	obj := newObj()
	strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return desc, false, err
	}
	if len(strict) > 0 {
		return desc, false, errors.Join(strict...)
	}
	return desc, true, nil
}

func validate(name string, r io.Reader) (objects, failures int) {
	docs := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for i := 1; ; i++ {
		doc, err := docs.Read()
		if err == io.EOF {
			return objects, failures
		}
		if err != nil {
			fmt.Printf("FAIL %s: document %d: %v\n", name, i, err)
			return objects, failures + 1
		}
		desc, ok, err := decode(doc)
		switch {
		case err != nil:
			failures++
			fmt.Printf("FAIL %s: document %d (%s): %v\n", name, i, strings.TrimSpace(desc), err)
		case ok:
			objects++
			fmt.Printf("ok   %s: %s\n", name, desc)
		}
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: validate FILE... (- for stdin)")
		os.Exit(2)
	}
	objects, failures := 0, 0
	for _, name := range os.Args[1:] {
		var r io.Reader = os.Stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(2)
			}
			defer f.Close()
			r = f
		}
		o, f := validate(name, r)
		objects += o
		failures += f
	}
	fmt.Printf("validate: %d object(s) decoded strictly, %d failed\n", objects, failures)
	if failures > 0 || objects == 0 {
		os.Exit(1)
	}
}

// Command kube-validate checks Kubernetes objects offline the way the API server checks a create:
// each YAML document is decoded strictly into its API type (an unknown or duplicate field is an
// error), defaulted, converted to the internal type and run through the resource's own create
// strategy (PrepareForCreate, then Validate: names, labels, selectors, container and volume rules).
// Objects of custom resources it knows (ServiceMonitor) are decoded strictly into their Go types.
//
// Usage: kube-validate [-namespace NS] FILE... (or - for stdin). It prints one line per problem,
// "FILE: Kind/name: problem", and exits 1 when there is any.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/yaml"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	_ "k8s.io/kubernetes/pkg/apis/admissionregistration/install"
	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	_ "k8s.io/kubernetes/pkg/apis/batch/install"
	api "k8s.io/kubernetes/pkg/apis/core"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	_ "k8s.io/kubernetes/pkg/apis/policy/install"
	_ "k8s.io/kubernetes/pkg/apis/rbac/install"
	_ "k8s.io/kubernetes/pkg/apis/storage/install"
	"k8s.io/kubernetes/pkg/capabilities"
	"k8s.io/kubernetes/pkg/registry/admissionregistration/validatingadmissionpolicy"
	"k8s.io/kubernetes/pkg/registry/admissionregistration/validatingadmissionpolicybinding"
	"k8s.io/kubernetes/pkg/registry/apps/daemonset"
	"k8s.io/kubernetes/pkg/registry/apps/deployment"
	"k8s.io/kubernetes/pkg/registry/batch/job"
	"k8s.io/kubernetes/pkg/registry/core/configmap"
	"k8s.io/kubernetes/pkg/registry/core/namespace"
	"k8s.io/kubernetes/pkg/registry/core/persistentvolume"
	"k8s.io/kubernetes/pkg/registry/core/persistentvolumeclaim"
	"k8s.io/kubernetes/pkg/registry/core/secret"
	"k8s.io/kubernetes/pkg/registry/core/service"
	"k8s.io/kubernetes/pkg/registry/core/serviceaccount"
	"k8s.io/kubernetes/pkg/registry/policy/poddisruptionbudget"
	"k8s.io/kubernetes/pkg/registry/rbac/clusterrole"
	"k8s.io/kubernetes/pkg/registry/rbac/clusterrolebinding"
	"k8s.io/kubernetes/pkg/registry/rbac/role"
	"k8s.io/kubernetes/pkg/registry/rbac/rolebinding"
	"k8s.io/kubernetes/pkg/registry/storage/csidriver"
	"k8s.io/kubernetes/pkg/registry/storage/storageclass"
	sigsyaml "sigs.k8s.io/yaml"
)

// strategies are the create strategies of the built-in kinds granary's chart and examples use.
// The admission policy strategies get no authorizer: it only checks paramKind and paramRef, which the
// chart does not use; their validation compiles every CEL expression, as the API server does.
var strategies = map[schema.GroupKind]rest.RESTCreateStrategy{
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicy"}:        validatingadmissionpolicy.NewStrategy(nil, nil),
	{Group: "admissionregistration.k8s.io", Kind: "ValidatingAdmissionPolicyBinding"}: validatingadmissionpolicybinding.NewStrategy(nil, nil, nil),
	{Group: "", Kind: "ConfigMap"}:                                   configmap.Strategy,
	{Group: "", Kind: "Namespace"}:                                   namespace.Strategy,
	{Group: "", Kind: "PersistentVolume"}:                            persistentvolume.Strategy,
	{Group: "", Kind: "PersistentVolumeClaim"}:                       persistentvolumeclaim.Strategy,
	{Group: "", Kind: "Secret"}:                                      secret.Strategy,
	{Group: "", Kind: "Service"}:                                     service.Strategy,
	{Group: "", Kind: "ServiceAccount"}:                              serviceaccount.Strategy,
	{Group: "apps", Kind: "DaemonSet"}:                               daemonset.Strategy,
	{Group: "apps", Kind: "Deployment"}:                              deployment.Strategy,
	{Group: "batch", Kind: "Job"}:                                    job.Strategy,
	{Group: "policy", Kind: "PodDisruptionBudget"}:                   poddisruptionbudget.Strategy,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:        clusterrole.Strategy,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: clusterrolebinding.Strategy,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:               role.Strategy,
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:        rolebinding.Strategy,
	{Group: "storage.k8s.io", Kind: "CSIDriver"}:                     csidriver.Strategy,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                  storageclass.Strategy,
}

var strict = serializer.NewCodecFactory(legacyscheme.Scheme, serializer.EnableStrict).UniversalDeserializer()

func main() {
	// As clusters run their API servers (--allow-privileged=true): CSI node plugins need privileged pods.
	capabilities.Initialize(capabilities.Capabilities{AllowPrivileged: true})
	namespaceFlag := flag.String("namespace", "default", "namespace of namespaced objects that name none (as kubectl apply -n)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: kube-validate [-namespace NS] FILE... (- for stdin)")
		os.Exit(2)
	}
	problems, objects := 0, 0
	for _, file := range flag.Args() {
		docs, err := documents(file)
		if err != nil {
			fmt.Printf("%s: %v\n", file, err)
			problems++
			continue
		}
		for _, doc := range docs {
			objects++
			what, errs := validate(doc, *namespaceFlag)
			for _, problem := range errs {
				fmt.Printf("%s: %s: %s\n", file, what, problem)
				problems++
			}
		}
	}
	fmt.Fprintf(os.Stderr, "kube-validate: %d objects, %d problems\n", objects, problems)
	if problems > 0 {
		os.Exit(1)
	}
}

// documents splits a multi-document YAML file into its non-empty documents.
func documents(file string) ([][]byte, error) {
	var in io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	reader := yaml.NewYAMLReader(bufio.NewReader(in))
	var docs [][]byte
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		// helm renders a template that produced nothing as a document holding only a comment.
		var content map[string]any
		if err := sigsyaml.Unmarshal(doc, &content); err != nil {
			return nil, err
		}
		if len(content) > 0 {
			docs = append(docs, doc)
		}
	}
}

// validate checks one document and names it "Kind/name" for the report.
func validate(doc []byte, defaultNamespace string) (string, []string) {
	var typeMeta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &typeMeta); err != nil {
		return "document", []string{err.Error()}
	}
	what := typeMeta.Kind + "/" + typeMeta.Metadata.Name
	gv, err := schema.ParseGroupVersion(typeMeta.APIVersion)
	if err != nil {
		return what, []string{err.Error()}
	}
	if gv.Group == monitoringv1.SchemeGroupVersion.Group {
		return what, validateMonitoring(doc, gv.WithKind(typeMeta.Kind))
	}

	external, _, err := strict.Decode(doc, nil, nil)
	if err != nil {
		return what, []string{err.Error()}
	}
	gvk := external.GetObjectKind().GroupVersionKind()
	strategy, ok := strategies[gvk.GroupKind()]
	if !ok {
		return what, []string{fmt.Sprintf("kube-validate does not know %s; add its create strategy", gvk)}
	}
	legacyscheme.Scheme.Default(external)
	internal, err := legacyscheme.Scheme.ConvertToVersion(external, schema.GroupVersion{Group: gvk.Group, Version: runtime.APIVersionInternal})
	if err != nil {
		return what, []string{err.Error()}
	}
	objectMeta, err := meta.Accessor(internal)
	if err != nil {
		return what, []string{err.Error()}
	}
	namespace := objectMeta.GetNamespace()
	if namespace == "" {
		namespace = defaultNamespace
	}
	if !strategy.NamespaceScoped() {
		if objectMeta.GetNamespace() != "" {
			return what, []string{"a cluster-scoped object must not set metadata.namespace"}
		}
		namespace = ""
	}
	rest.FillObjectMetaSystemFields(objectMeta)
	if service, ok := internal.(*api.Service); ok {
		allocateClusterIPs(service)
	}
	ctx := genericapirequest.WithNamespace(context.Background(), namespace)
	if err := rest.BeforeCreate(strategy, ctx, internal); err != nil {
		return what, []string{err.Error()}
	}
	return what, nil
}

// validateMonitoring decodes a prometheus-operator object strictly into its Go type.
func validateMonitoring(doc []byte, gvk schema.GroupVersionKind) []string {
	var target any
	switch gvk {
	case monitoringv1.SchemeGroupVersion.WithKind("ServiceMonitor"):
		target = &monitoringv1.ServiceMonitor{}
	case monitoringv1.SchemeGroupVersion.WithKind("PodMonitor"):
		target = &monitoringv1.PodMonitor{}
	default:
		return []string{fmt.Sprintf("kube-validate does not know %s", gvk)}
	}
	if err := sigsyaml.UnmarshalStrict(doc, target); err != nil {
		return []string{err.Error()}
	}
	var problems []string
	if sm, ok := target.(*monitoringv1.ServiceMonitor); ok {
		if len(sm.Spec.Endpoints) == 0 {
			problems = append(problems, "spec.endpoints: at least one endpoint is required")
		}
		if sm.Name == "" {
			problems = append(problems, "metadata.name: required")
		}
	}
	return problems
}

// allocateClusterIPs does what the Service REST storage does before validation: spec.clusterIPs
// follows spec.clusterIP (a headless Service's "None" included), and a single-stack family.
func allocateClusterIPs(service *api.Service) {
	if service.Spec.Type != api.ServiceTypeClusterIP && service.Spec.Type != "" {
		return
	}
	ip := service.Spec.ClusterIP
	if ip == "" {
		ip = "10.96.0.10"
	}
	if len(service.Spec.ClusterIPs) == 0 {
		service.Spec.ClusterIP = ip
		service.Spec.ClusterIPs = []string{ip}
	}
	if service.Spec.IPFamilyPolicy == nil {
		single := api.IPFamilyPolicySingleStack
		service.Spec.IPFamilyPolicy = &single
	}
	if len(service.Spec.IPFamilies) == 0 {
		service.Spec.IPFamilies = []api.IPFamily{api.IPv4Protocol}
	}
}

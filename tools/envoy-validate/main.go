// envoy-validate checks Envoy v3 bootstrap files the way Envoy's own config loader would reject
// them, without an Envoy binary:
//
//  1. YAML -> JSON -> protojson into envoy.config.bootstrap.v3.Bootstrap with DiscardUnknown=false,
//     so an unknown field, a wrong type or an unknown enum value is an error;
//  2. ValidateAll() from the protoc-gen-validate rules compiled into go-control-plane
//     (required fields, ranges, string patterns, durations, ...);
//  3. every google.protobuf.Any (typed_config, typed_extension_protocol_options, ...) is unpacked
//     with the types registered by imports.go (all v3 config/extension packages); an unknown
//     @type is an error, and the unpacked message is validated and walked the same way.
//
// Usage: envoy-validate FILE...   (exit 0: all valid; 1: invalid; 2: usage or I/O error)
package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	_ "github.com/cncf/xds/go/udpa/type/v1"
	_ "github.com/cncf/xds/go/xds/type/v3"
)

type validatorAll interface{ ValidateAll() error }
type validator interface{ Validate() error }

// validateMessage runs the protoc-gen-validate rules of m (which recurse into nested messages,
// but not into Any payloads).
func validateMessage(m proto.Message) error {
	switch v := m.(type) {
	case validatorAll:
		return v.ValidateAll()
	case validator:
		return v.Validate()
	}
	return nil
}

// categories maps where an Any sits to the extension category Envoy looks its factory up in
// (Envoy picks the factory by the payload's type within that category): a payload from another
// category is rejected at load time, so it is here too.
var categories = []struct {
	pathSuffix *regexp.Regexp
	typePrefix string
	category   string
}{
	{regexp.MustCompile(`cluster_type\.typed_config$`), "envoy.extensions.clusters.", "cluster"},
	{regexp.MustCompile(`filter_chains\[\d+\]\.filters\[\d+\]\.typed_config$`), "envoy.extensions.filters.network.", "network filter"},
	{regexp.MustCompile(`transport_socket\.typed_config$`), "envoy.extensions.transport_sockets.", "transport socket"},
	{regexp.MustCompile(`resource_monitors\[\d+\]\.typed_config$`), "envoy.extensions.resource_monitors.", "resource monitor"},
}

func checkCategory(path, typeName string) error {
	for _, c := range categories {
		if c.pathSuffix.MatchString(path) && !strings.HasPrefix(typeName, c.typePrefix) {
			return fmt.Errorf("%s: %s is not a %s extension (expected a %s* type)", path, typeName, c.category, c.typePrefix)
		}
	}
	return nil
}

// walkAnys finds every Any in m, unpacks it, validates the payload and recurses into it.
// path is a human-readable location such as static_resources.listeners[0].filter_chains[0].
func walkAnys(m protoreflect.Message, path string, problems *[]string, unpacked *int) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		name := string(fd.Name())
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visit(l.Get(i).Message(), fmt.Sprintf("%s%s[%d]", path, name, i), problems, unpacked)
			}
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				return true
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				visit(mv.Message(), fmt.Sprintf("%s%s[%q]", path, name, k.String()), problems, unpacked)
				return true
			})
		default:
			visit(v.Message(), path+name, problems, unpacked)
		}
		return true
	})
}

func visit(m protoreflect.Message, path string, problems *[]string, unpacked *int) {
	if m.Descriptor().FullName() != "google.protobuf.Any" {
		walkAnys(m, path+".", problems, unpacked)
		return
	}
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		a = &anypb.Any{}
		proto.Merge(a, m.Interface())
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		*problems = append(*problems, fmt.Sprintf("%s: cannot unpack %s: %v", path, a.GetTypeUrl(), err))
		return
	}
	*unpacked++
	if err := checkCategory(path, string(inner.ProtoReflect().Descriptor().FullName())); err != nil {
		*problems = append(*problems, err.Error())
	}
	if err := validateMessage(inner); err != nil {
		*problems = append(*problems, fmt.Sprintf("%s (%s): %v", path, a.GetTypeUrl(), err))
	}
	walkAnys(inner.ProtoReflect(), path+"<"+string(inner.ProtoReflect().Descriptor().FullName())+">.", problems, unpacked)
}

// Validate parses and validates one bootstrap document. It returns the number of Any payloads
// unpacked, and an error listing every problem found.
func Validate(doc []byte) (int, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return 0, fmt.Errorf("not YAML/JSON: %w", err)
	}
	bs := &bootstrapv3.Bootstrap{}
	opts := protojson.UnmarshalOptions{DiscardUnknown: false, Resolver: protoregistry.GlobalTypes}
	if err := opts.Unmarshal(js, bs); err != nil {
		return 0, fmt.Errorf("does not match envoy.config.bootstrap.v3.Bootstrap: %w", err)
	}
	var problems []string
	if err := validateMessage(bs); err != nil {
		problems = append(problems, "Bootstrap: "+err.Error())
	}
	unpacked := 0
	walkAnys(bs.ProtoReflect(), "", &problems, &unpacked)
	if len(problems) > 0 {
		return unpacked, errors.New(strings.Join(problems, "\n  "))
	}
	return unpacked, nil
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: envoy-validate FILE... (Envoy v3 bootstrap, YAML or JSON)")
		os.Exit(2)
	}
	failed := false
	for _, file := range os.Args[1:] {
		doc, err := os.ReadFile(file)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			os.Exit(2)
		}
		n, err := Validate(doc)
		if err != nil {
			failed = true
			fmt.Printf("INVALID %s:\n  %v\n", file, err)
			continue
		}
		fmt.Printf("OK %s (%d typed configs unpacked and validated)\n", file, n)
	}
	if failed {
		os.Exit(1)
	}
}

// Command cel-oracle compiles and evaluates DRA device selectors with Kubernetes' own code
// (k8s.io/dynamic-resource-allocation/cel, the compiler the API server and the scheduler use),
// so that Modelplane's Python CEL engine can be checked against it (e2e/cel_differential.py).
//
// Protocol: one JSON object per line on stdin, one JSON object per line on stdout, in order.
//
//	in:  {"id": any, "expr": "...", "mode": "match"|"value",
//	      "env": "StoredExpressions"|"NewExpressions",
//	      "features": {"DRAConsumableCapacity": bool},
//	      "device": {"driver": "...", "allowMultipleAllocations": bool,
//	                 "attributes": {"<qualifiedName>": {"int"|"bool"|"string"|"version": v}},
//	                 "capacity": {"<qualifiedName>": "<quantity>" | {"value": "<quantity>"}}}}
//	out: {"id": any, "class": ..., "message": "...", "result": bool,
//	      "value": "...", "value_type": "...", "estimated_cost": n, "actual_cost": n}
//
// class is one of
//
//	too_long       len(expr) > CELSelectorExpressionMaxLength (API validation)
//	compile_error  CompileCELExpression returned an error (message = its Detail)
//	too_complex    compiled, but the worst-case estimate exceeds CELSelectorExpressionMaxCost
//	               (the API server rejects such a selector; it is still evaluated, see below)
//	device_error   the input device could not be built (bad quantity), or DeviceMatches failed
//	               on an attribute value (e.g. an invalid version)
//	runtime_error  DeviceMatches returned an error (message = its text)
//	match          DeviceMatches returned a bool (result)
//	value          mode "value": the expression's value (any type) as value/value_type
//	bad_input      the input line was not understood
//
// For too_complex, "eval_class"/"result"/"message" also tell what DeviceMatches then did, as
// the scheduler would (it evaluates with the runtime cost limit only).
//
// Mode "value" evaluates expressions of any result type (the quantity and semver library
// tables) in the same environment with an empty device; it uses the environment of the DRA
// compiler but its own program, since CompileCELExpression insists on bool.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"google.golang.org/protobuf/types/known/structpb"

	resourceapi "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/environment"
	dracel "k8s.io/dynamic-resource-allocation/cel"
)

type request struct {
	ID       any             `json:"id"`
	Expr     string          `json:"expr"`
	Mode     string          `json:"mode"`
	Env      string          `json:"env"`
	Features map[string]bool `json:"features"`
	Device   *inputDevice    `json:"device"`
}

type inputDevice struct {
	Driver                   string                     `json:"driver"`
	AllowMultipleAllocations *bool                      `json:"allowMultipleAllocations"`
	Attributes               map[string]inputAttribute  `json:"attributes"`
	Capacity                 map[string]json.RawMessage `json:"capacity"`
}

type inputAttribute struct {
	Int     *int64  `json:"int"`
	Bool    *bool   `json:"bool"`
	String  *string `json:"string"`
	Version *string `json:"version"`
}

type response struct {
	ID            any     `json:"id"`
	Class         string  `json:"class"`
	EvalClass     string  `json:"eval_class,omitempty"`
	Message       string  `json:"message,omitempty"`
	Result        *bool   `json:"result,omitempty"`
	Value         any     `json:"value,omitempty"`
	ValueType     string  `json:"value_type,omitempty"`
	EstimatedCost *uint64 `json:"estimated_cost,omitempty"`
	ActualCost    *uint64 `json:"actual_cost,omitempty"`
}

func toDevice(in *inputDevice) (dracel.Device, error) {
	out := dracel.Device{}
	if in == nil {
		return out, nil
	}
	out.Driver = in.Driver
	out.AllowMultipleAllocations = in.AllowMultipleAllocations
	if len(in.Attributes) > 0 {
		out.Attributes = make(map[resourceapi.QualifiedName]resourceapi.DeviceAttribute, len(in.Attributes))
		for name, a := range in.Attributes {
			out.Attributes[resourceapi.QualifiedName(name)] = resourceapi.DeviceAttribute{
				IntValue: a.Int, BoolValue: a.Bool, StringValue: a.String, VersionValue: a.Version,
			}
		}
	}
	if len(in.Capacity) > 0 {
		out.Capacity = make(map[resourceapi.QualifiedName]resourceapi.DeviceCapacity, len(in.Capacity))
		for name, raw := range in.Capacity {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				var obj struct {
					Value string `json:"value"`
				}
				if err := json.Unmarshal(raw, &obj); err != nil {
					return out, fmt.Errorf("capacity %s: want a quantity string or {value: ...}", name)
				}
				s = obj.Value
			}
			q, err := resource.ParseQuantity(s)
			if err != nil {
				return out, fmt.Errorf("capacity %s: %w", name, err)
			}
			out.Capacity[resourceapi.QualifiedName(name)] = resourceapi.DeviceCapacity{Value: q}
		}
	}
	return out, nil
}

func options(req *request) (dracel.Features, dracel.Options) {
	envType := environment.StoredExpressions
	if req.Env == "NewExpressions" {
		envType = environment.NewExpressions
	}
	features := dracel.Features{EnableConsumableCapacity: req.Features["DRAConsumableCapacity"]}
	return features, dracel.Options{EnvType: &envType}
}

func handle(req *request) response {
	resp := response{ID: req.ID}
	if req.Mode == "value" {
		return evalValue(req, resp)
	}
	if len(req.Expr) > resourceapi.CELSelectorExpressionMaxLength {
		resp.Class = "too_long"
		resp.Message = fmt.Sprintf("%d bytes > %d", len(req.Expr), resourceapi.CELSelectorExpressionMaxLength)
		return resp
	}
	device, err := toDevice(req.Device)
	if err != nil {
		resp.Class = "device_error"
		resp.Message = err.Error()
		return resp
	}
	features, opts := options(req)
	result := dracel.GetCompiler(features).CompileCELExpression(req.Expr, opts)
	if result.MaxCost != math.MaxUint64 {
		c := result.MaxCost
		resp.EstimatedCost = &c
	}
	if result.Error != nil {
		resp.Class = "compile_error"
		resp.Message = result.Error.Detail
		return resp
	}
	matched, details, err := result.DeviceMatches(context.Background(), device)
	if details != nil {
		resp.ActualCost = details.ActualCost()
	}
	evalClass := "match"
	switch {
	case err != nil && isAttributeError(err):
		evalClass = "device_error"
		resp.Message = err.Error()
	case err != nil:
		evalClass = "runtime_error"
		resp.Message = err.Error()
	default:
		resp.Result = &matched
	}
	if result.MaxCost > resourceapi.CELSelectorExpressionMaxCost {
		resp.Class = "too_complex"
		resp.EvalClass = evalClass
		return resp
	}
	resp.Class = evalClass
	return resp
}

// isAttributeError tells DeviceMatches' own input errors (an attribute whose value it cannot
// use: "attribute <name>: parse semantic version: ..." or "...: unsupported attribute value")
// from evaluation errors. The API server would have rejected such a ResourceSlice.
func isAttributeError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "attribute ") &&
		(strings.Contains(msg, ": parse semantic version: ") || strings.HasSuffix(msg, ": unsupported attribute value"))
}

// mapWithDefault mirrors what DeviceMatches does for device.attributes / device.capacity:
// looking up an unknown domain yields an empty map. Used by mode "value" only.
type mapWithDefault struct {
	traits.Mapper
	empty ref.Val
}

func (m mapWithDefault) Find(key ref.Val) (ref.Val, bool) {
	if v, found := m.Mapper.Find(key); found {
		return v, true
	}
	return m.empty, true
}

func evalValue(req *request, resp response) response {
	features, opts := options(req)
	base := dracel.GetCompiler(features).CompileCELExpression("true", opts)
	if base.Error != nil || base.Environment == nil {
		resp.Class = "bad_input"
		resp.Message = "cannot obtain the DRA environment"
		return resp
	}
	env := base.Environment
	ast, issues := env.Compile(req.Expr)
	if issues != nil && issues.Err() != nil {
		resp.Class = "compile_error"
		resp.Message = "compilation failed: " + issues.String()
		return resp
	}
	prog, err := env.Program(ast, cel.CostLimit(resourceapi.CELSelectorExpressionMaxCost))
	if err != nil {
		resp.Class = "compile_error"
		resp.Message = "program instantiation failed: " + err.Error()
		return resp
	}
	adapter := env.CELTypeAdapter()
	empty := adapter.NativeToValue(map[string]any{})
	device := map[string]any{
		"driver":                   "",
		"allowMultipleAllocations": false,
		"attributes":               mapWithDefault{types.NewStringInterfaceMap(adapter, map[string]any{}), empty},
		"capacity":                 mapWithDefault{types.NewStringInterfaceMap(adapter, map[string]any{}), empty},
	}
	val, details, err := prog.ContextEval(context.Background(), map[string]any{"device": device})
	if details != nil {
		resp.ActualCost = details.ActualCost()
	}
	if err != nil {
		resp.Class = "runtime_error"
		resp.Message = err.Error()
		return resp
	}
	resp.Class = "value"
	resp.ValueType, resp.Value = render(val)
	return resp
}

// quantityString spells a quantity's value as a plain decimal (inf.Dec), not with
// resource.Quantity.String(): that returns a stale cached spelling for the result of add() on
// a big-decimal quantity ("1" for quantity("1").add(quantity("999999999999999999999")), whose
// comparisons and asApproximateFloat() say 1e21), which is not what we want to compare.
func quantityString(q *resource.Quantity) string {
	return q.AsDec().String()
}

// render gives a CEL value a JSON form: scalars as themselves, quantities and versions as
// their canonical strings, lists and maps through protobuf's JSON mapping where possible.
func render(v ref.Val) (string, any) {
	switch x := v.(type) {
	case apiservercel.Quantity:
		return "quantity", quantityString(x.Quantity)
	case *apiservercel.Quantity: // what add() and sub() return
		return "quantity", quantityString(x.Quantity)
	case apiservercel.Semver:
		return "semver", x.Version.String()
	case types.Bool:
		return "bool", bool(x)
	case types.Int:
		return "int", int64(x)
	case types.Uint:
		return "uint", uint64(x)
	case types.Double:
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return "double", fmt.Sprint(f)
		}
		return "double", f
	case types.String:
		return "string", string(x)
	case types.Bytes:
		return "bytes", string(x)
	case types.Null:
		return "null", nil
	}
	name := v.Type().TypeName()
	if l, ok := v.(traits.Lister); ok {
		items := []any{}
		for it := l.Iterator(); it.HasNext() == types.True; {
			_, item := render(it.Next())
			items = append(items, item)
		}
		return "list", items
	}
	if native, err := v.ConvertToNative(reflect.TypeOf(&structpb.Value{})); err == nil {
		if pv, ok := native.(*structpb.Value); ok {
			return name, pv.AsInterface()
		}
	}
	return name, fmt.Sprint(v.Value())
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for in.Scan() {
		line := in.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		var req request
		var resp response
		if err := json.Unmarshal(line, &req); err != nil {
			resp = response{Class: "bad_input", Message: err.Error()}
		} else {
			resp = handle(&req)
		}
		if err := enc.Encode(resp); err != nil {
			fmt.Fprintln(os.Stderr, "cel-oracle: write:", err)
			os.Exit(1)
		}
		// Flush per line so a caller may also drive the oracle interactively.
		if err := out.Flush(); err != nil {
			fmt.Fprintln(os.Stderr, "cel-oracle: write:", err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		fmt.Fprintln(os.Stderr, "cel-oracle: read:", err)
		os.Exit(1)
	}
}

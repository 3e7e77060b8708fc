"""FFI smoke test: the shared library through Python's ctypes alone.

Builds a small VAE, trains it for a few steps on synthetic data and checks
that the loss fell; the same with a two-step inverse autoregressive flow,
then estimates log p(x) by importance sampling; also checks error
reporting and the version query.
Usage: test_ffi.py path/to/libvae.so
"""
import ctypes as C
import math
import random
import sys

lib = C.CDLL(sys.argv[1])
int_p = C.POINTER(C.c_int)

def fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f

version_string = fn("vae_version_string", C.c_char_p)
strerror = fn("vae_strerror", C.c_char_p, C.c_int)
last_error = fn("vae_last_error", C.c_char_p)
graph_create = fn("vae_graph_create", C.c_int, C.POINTER(C.c_void_p), C.c_uint64)
graph_input = fn("vae_graph_input", C.c_int, C.c_void_p, C.c_char_p, C.c_int, int_p, int_p)
layer_dense = fn("vae_layer_dense", C.c_int, C.c_void_p, C.c_int, C.c_int, C.c_int, C.c_char_p, int_p)
gaussian_mlp = fn("vae_layer_gaussian_mlp", C.c_int, C.c_void_p, C.c_int, C.c_int, C.c_int,
                  C.c_int, C.c_int, C.c_char_p, int_p, int_p, int_p)
sample_normal = fn("vae_op_sample_normal", C.c_int, C.c_void_p, C.c_int, C.c_int, int_p)
bernoulli_mlp = fn("vae_layer_bernoulli_mlp", C.c_int, C.c_void_p, C.c_int, C.c_int, C.c_int,
                   C.c_int, C.c_char_p, int_p)
elbo_build = fn("vae_elbo_build", C.c_int, C.c_void_p, C.c_int, C.c_int, C.c_int, C.c_int,
                C.c_int, C.c_int, C.c_int, C.c_float, int_p)
model_create = fn("vae_model_create", C.c_int, C.POINTER(C.c_void_p), C.c_void_p)
model_free = fn("vae_model_free", None, C.c_void_p)
optimizer_create = fn("vae_optimizer_create", C.c_int, C.POINTER(C.c_void_p), C.c_void_p, C.c_int)
optimizer_set = fn("vae_optimizer_set", C.c_int, C.c_void_p, C.c_int, C.c_double)
optimizer_free = fn("vae_optimizer_free", None, C.c_void_p)
tensor_from_host = fn("vae_tensor_from_host", C.c_int, C.POINTER(C.c_void_p), C.c_int,
                      C.POINTER(C.c_int64), C.POINTER(C.c_float))
tensor_free = fn("vae_tensor_free", None, C.c_void_p)
train_step = fn("vae_model_train_step", C.c_int, C.c_void_p, C.c_void_p, C.c_void_p,
                C.POINTER(C.c_double), C.POINTER(C.c_double))
iaf_step = fn("vae_layer_iaf_step", C.c_int, C.c_void_p, C.c_int, C.c_int, C.c_int, C.c_int,
              C.c_char_p, int_p, int_p)
op_add = fn("vae_op_add", C.c_int, C.c_void_p, C.c_int, C.c_int, int_p)
elbo_build_flow = fn("vae_elbo_build_flow", C.c_int, C.c_void_p, C.c_int, C.c_int, C.c_int,
                     C.c_int, C.c_int, C.c_int, C.c_int, C.c_int, C.c_int, C.c_float, int_p)
dataset_from_f32 = fn("vae_dataset_from_f32", C.c_int, C.POINTER(C.c_void_p), C.c_int64, C.c_int,
                      int_p, C.POINTER(C.c_float), C.c_void_p)
dataset_free = fn("vae_dataset_free", None, C.c_void_p)
model_evaluate = fn("vae_model_evaluate", C.c_int, C.c_void_p, C.c_void_p, C.POINTER(C.c_double))
PROGRESS = C.CFUNCTYPE(C.c_int, C.c_void_p, C.c_int, C.c_int, C.c_float)
log_likelihood = fn("vae_model_log_likelihood", C.c_int, C.c_void_p, C.c_void_p, C.c_int,
                    C.c_uint64, PROGRESS, C.c_void_p, C.POINTER(C.c_double),
                    C.POINTER(C.c_double))

train_epoch = fn("vae_model_train_epoch", C.c_int, C.c_void_p, C.c_void_p, C.c_void_p, C.c_int,
                 C.c_void_p, C.c_void_p, C.POINTER(C.c_double), C.POINTER(C.c_double))
history_set = fn("vae_model_history_set", C.c_int, C.c_void_p, C.c_int, C.c_char_p, C.c_double)
history_get = fn("vae_model_history_get", C.c_double, C.c_void_p, C.c_int, C.c_char_p)
history_epochs = fn("vae_model_history_epochs", C.c_int, C.c_void_p)
history_column = fn("vae_model_history_column", C.c_char_p, C.c_void_p, C.c_int)
set_metadata = fn("vae_model_set_metadata", C.c_int, C.c_void_p, C.c_char_p, C.c_char_p)
metadata = fn("vae_model_metadata", C.c_char_p, C.c_void_p, C.c_char_p)
model_save = fn("vae_model_save", C.c_int, C.c_void_p, C.c_void_p, C.c_char_p)
model_load = fn("vae_model_load", C.c_int, C.POINTER(C.c_void_p), C.c_char_p)
optimizer_get_kind = fn("vae_optimizer_get_kind", C.c_int, C.c_void_p, int_p)
set_memory_limit = fn("vae_model_set_memory_limit", C.c_int, C.c_void_p, C.c_int64)

node_kind = fn("vae_graph_node_kind", C.c_int, C.c_void_p, C.c_int)
node_op = fn("vae_graph_node_op", C.c_char_p, C.c_void_p, C.c_int)
node_name = fn("vae_graph_node_name", C.c_char_p, C.c_void_p, C.c_int)
node_inputs = fn("vae_graph_node_inputs", C.c_int, C.c_void_p, C.c_int, int_p)
node_role = fn("vae_graph_node_role", C.c_int, C.c_void_p, C.c_int)
node_batched = fn("vae_graph_node_batched", C.c_int, C.c_void_p, C.c_int)
graph_find = fn("vae_graph_find", C.c_int, C.c_void_p, C.c_char_p)
model_graph = fn("vae_model_graph", C.c_void_p, C.c_void_p)
param_get = fn("vae_model_param_get", C.c_int, C.c_void_p, C.c_char_p, C.POINTER(C.c_float),
               C.c_int64)
param_set = fn("vae_model_param_set", C.c_int, C.c_void_p, C.c_char_p, C.POINTER(C.c_float),
               C.c_int64)
summary = fn("vae_model_summary", C.c_int, C.c_void_p, C.c_char_p, C.c_size_t,
             C.POINTER(C.c_size_t))
graph_dot = fn("vae_graph_dot", C.c_int, C.c_void_p, C.c_char_p, C.c_size_t,
               C.POINTER(C.c_size_t))
file_format = fn("vae_model_file_format", C.c_int, C.c_void_p)
optimizer_rate = fn("vae_optimizer_rate", C.c_double, C.c_void_p)
model_freeze = fn("vae_model_freeze", C.c_int, C.c_void_p, C.c_char_p, C.c_int, int_p)
param_frozen = fn("vae_model_param_frozen", C.c_int, C.c_void_p, C.c_char_p)
set_beta = fn("vae_model_set_beta", C.c_int, C.c_void_p, C.c_double)
get_beta = fn("vae_model_beta", C.c_double, C.c_void_p)
dataset_split = fn("vae_dataset_split", C.c_int, C.c_void_p, C.c_double, C.c_uint64,
                   C.POINTER(C.c_void_p), C.POINTER(C.c_void_p))
dataset_count = fn("vae_dataset_count", C.c_int64, C.c_void_p)
model_clone = fn("vae_model_clone", C.c_int, C.POINTER(C.c_void_p), C.c_void_p)
encode_latent = fn("vae_model_encode_latent", C.c_int, C.c_void_p, C.c_void_p, C.c_void_p)
decode_sample = fn("vae_model_decode_sample", C.c_int, C.c_void_p, C.c_void_p, C.c_uint64,
                   C.c_void_p)
evaluate_terms = fn("vae_model_evaluate_terms", C.c_int, C.c_void_p, C.c_void_p,
                    C.POINTER(C.c_double), C.POINTER(C.c_double), C.POINTER(C.c_double),
                    C.POINTER(C.c_float))
file_writer = fn("vae_model_file_writer", C.c_char_p, C.c_void_p)

VAE_OK, VAE_ERR_ARGUMENT = 0, 1
ACT_NONE, ACT_RELU = 0, 1
OPTIMIZER_ADAM, OPT_LEARNING_RATE = 2, 0
checks = 0

def ok(status):
    if status != VAE_OK:
        raise AssertionError("%s: %s" % (strerror(status).decode(), last_error().decode()))

def check(cond, what):
    global checks
    if not cond:
        print("FAIL:", what)
        print("0 passed, 1 failed")
        sys.exit(1)
    checks += 1

check(version_string().decode().count(".") == 2, "version string")

features, rows = 16, 32
g = C.c_void_p()
ok(graph_create(C.byref(g), 3))
x, h, mu, lv, z, logits, loss = (C.c_int() for _ in range(7))
ok(graph_input(g, b"x", 1, C.byref(C.c_int(features)), C.byref(x)))
ok(layer_dense(g, x, 12, ACT_RELU, b"enc", C.byref(h)))
ok(gaussian_mlp(g, h, 0, ACT_NONE, 2, 0, b"q", C.byref(mu), C.byref(lv), None))
ok(sample_normal(g, mu, lv, C.byref(z)))
ok(bernoulli_mlp(g, z, 12, ACT_RELU, features, b"p", C.byref(logits)))
ok(elbo_build(g, x, mu, lv, z, logits, 0, 0, C.c_float(1.0), C.byref(loss)))

# An error is a status plus a message, never a crash.
bad = C.c_int()
status = layer_dense(g, 9999, 4, ACT_RELU, b"bad", C.byref(bad))
check(status == VAE_ERR_ARGUMENT and b"9999" in last_error(), "bad node id reported")

m = C.c_void_p()
ok(model_create(C.byref(m), g))
opt = C.c_void_p()
ok(optimizer_create(C.byref(opt), m, OPTIMIZER_ADAM))
ok(optimizer_set(opt, OPT_LEARNING_RATE, 0.01))

random.seed(0)
data = (C.c_float * (rows * features))()
for r in range(rows):
    on = r % 2  # two patterns: left half or right half lit
    for i in range(features):
        data[r * features + i] = 1.0 if (i < features // 2) == bool(on) else 0.0
dims = (C.c_int64 * 2)(rows, features)
batch = C.c_void_p()
ok(tensor_from_host(C.byref(batch), 2, dims, data))

objective, nelbo = C.c_double(), C.c_double()
losses = []
for step in range(200):
    ok(train_step(m, opt, batch, C.byref(objective), C.byref(nelbo)))
    losses.append(nelbo.value)
check(all(math.isfinite(v) for v in losses), "losses finite")
first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
print("ffi: -ELBO %.3f -> %.3f over %d steps" % (first, last, len(losses)))
check(last < 0.5 * first, "loss fell by half (%.3f -> %.3f)" % (first, last))

tensor_free(batch)
optimizer_free(opt)
model_free(m)

# The same data through a VAE with a context and two IAF steps.
g = C.c_void_p()
ok(graph_create(C.byref(g), 4))
x, h, mu, lv, ctx, z0, logits, loss = (C.c_int() for _ in range(8))
ok(graph_input(g, b"x", 1, C.byref(C.c_int(features)), C.byref(x)))
ok(layer_dense(g, x, 12, ACT_RELU, b"enc", C.byref(h)))
ok(gaussian_mlp(g, h, 0, ACT_NONE, 3, 6, b"q", C.byref(mu), C.byref(lv), C.byref(ctx)))
ok(sample_normal(g, mu, lv, C.byref(z0)))
z, log_det, ld_sum = C.c_int(z0.value), C.c_int(), C.c_int(-1)
for i in range(2):
    ok(iaf_step(g, z, ctx, 10, i % 2, b"flow%d" % i, C.byref(z), C.byref(log_det)))
    if ld_sum.value < 0:
        ld_sum.value = log_det.value
    else:
        ok(op_add(g, ld_sum, log_det, C.byref(ld_sum)))
ok(bernoulli_mlp(g, z, 12, ACT_RELU, features, b"p", C.byref(logits)))
ok(elbo_build_flow(g, x, mu, lv, z0, z, ld_sum, logits, 0, 0, C.c_float(1.0), C.byref(loss)))
m = C.c_void_p()
ok(model_create(C.byref(m), g))
opt = C.c_void_p()
ok(optimizer_create(C.byref(opt), m, OPTIMIZER_ADAM))
ok(optimizer_set(opt, OPT_LEARNING_RATE, 0.01))
batch = C.c_void_p()
ok(tensor_from_host(C.byref(batch), 2, dims, data))
losses = []
for step in range(200):
    ok(train_step(m, opt, batch, C.byref(objective), C.byref(nelbo)))
    losses.append(nelbo.value)
first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
print("ffi, flow: -ELBO %.3f -> %.3f over %d steps" % (first, last, len(losses)))
check(last < 0.5 * first, "flow: loss fell by half (%.3f -> %.3f)" % (first, last))

ds = C.c_void_p()
ok(dataset_from_f32(C.byref(ds), rows, 1, C.byref(C.c_int(features)), data, None))
calls = []
def on_progress(user, done, count, nll):
    calls.append(done)
    return 0
progress = PROGRESS(on_progress)
elbo_mean, log_px = C.c_double(), C.c_double()
per_image = (C.c_double * rows)()
ok(model_evaluate(m, ds, C.byref(elbo_mean)))
ok(log_likelihood(m, ds, 64, 7, progress, None, C.byref(log_px), per_image))
print("ffi, flow: -ELBO %.3f, -log p(x) %.3f (k = 64)" % (elbo_mean.value, -log_px.value))
check(math.isfinite(log_px.value) and calls and calls[-1] == rows, "log p(x) with progress")
check(abs(sum(per_image) / rows - log_px.value) < 1e-9, "per-image estimates")
# the importance-weighted bound is at least the ELBO (up to sampling noise)
check(-log_px.value < elbo_mean.value + 0.5, "IWAE bound above the ELBO")

# 0.3: the history and metadata travel with the model file.
ok(train_epoch(m, opt, ds, 8, None, None, None, C.byref(nelbo)))
ok(history_set(m, 1, b"test_loss", 42.5))
ok(set_metadata(m, b"host.note", b"from python"))
kind = C.c_int()
ok(optimizer_get_kind(opt, C.byref(kind)))
check(kind.value == OPTIMIZER_ADAM, "optimizer kind")
OPT_SCHEDULE, OPT_SCHEDULE_GAMMA, LR_EXPONENTIAL = 8, 10, 2
ok(optimizer_set(opt, OPT_SCHEDULE, LR_EXPONENTIAL))
ok(optimizer_set(opt, OPT_SCHEDULE_GAMMA, 0.5))
steps_fn = fn("vae_optimizer_steps", C.c_int64, C.c_void_p)
expected = 0.01 * 0.5 ** steps_fn(opt)
check(abs(optimizer_rate(opt) / expected - 1) < 1e-12, "exponential schedule")
check(set_memory_limit(m, 0) == VAE_ERR_ARGUMENT, "memory limit must be positive")
import os, tempfile
path = os.path.join(tempfile.mkdtemp(), "m.vae").encode()
ok(model_save(m, opt, path))
loaded = C.c_void_p()
ok(model_load(C.byref(loaded), path))
check(history_epochs(loaded) == 1 and history_column(loaded, 1) == b"train_nelbo",
      "history columns")
check(history_get(loaded, 1, b"train_nelbo") == nelbo.value, "history value")
check(history_get(loaded, 1, b"test_loss") == 42.5, "host's history value")
check(math.isnan(history_get(loaded, 2, b"test_loss")), "unrecorded value is NaN")
check(metadata(loaded, b"host.note") == b"from python", "metadata")
check(metadata(loaded, b"absent") is None, "absent metadata")
check(file_format(loaded) == 2 and file_writer(loaded) == version_string(), "file origin")

# Looking inside: nodes, a layer by name, the summary and the diagram.
lg = model_graph(loaded)
enc_w = graph_find(lg, b"enc.w")
check(node_kind(lg, enc_w) == 1 and node_batched(lg, enc_w) == 0, "parameter node")
check(node_op(lg, graph_find(lg, b"x")) == b"input" and node_role(lg, graph_find(lg, b"x")) == 0,
      "input node")
ins = (C.c_int * 4)()
consumers = [i for i in range(200) if node_inputs(lg, i, ins) > 0 and enc_w in list(ins)[:2]]
check(consumers and node_op(lg, consumers[0]) == b"matmul", "enc.w feeds a matmul")
weights = (C.c_float * (features * 12))()
ok(param_get(loaded, b"enc.w", weights, len(weights)))
weights[0] = 0.25
ok(param_set(loaded, b"enc.w", weights, len(weights)))
back = (C.c_float * (features * 12))()
ok(param_get(loaded, b"enc.w", back, len(back)))
check(list(back) == list(weights), "a layer set by name reads back")
weights[1] = float("nan")
check(param_set(loaded, b"enc.w", weights, len(weights)) == 6, "NaN weights refused")
need = C.c_size_t()
ok(summary(loaded, None, 0, C.byref(need)))
text = C.create_string_buffer(need.value)
ok(summary(loaded, text, need.value, None))
total = int(text.value.decode().split("Total parameters: ")[1].split()[0].replace(",", ""))
param_count = fn("vae_model_param_count", C.c_int64, C.c_void_p)
check(b"flow0" in text.value and total == param_count(loaded), "summary total")
ok(graph_dot(lg, None, 0, C.byref(need)))
text = C.create_string_buffer(need.value)
ok(graph_dot(lg, text, need.value, None))
check(text.value.startswith(b"digraph vae {") and b"z: " in text.value, "diagram")
matched = C.c_int()
ok(model_freeze(loaded, b"enc", 1, C.byref(matched)))
check(matched.value == 2 and param_frozen(loaded, b"enc.w") == 1 and param_frozen(loaded, b"p.logits.w") == 0,
      "freezing by prefix")
ok(set_beta(loaded, 0.25))
check(get_beta(loaded) == 0.25, "KL weight at run time")
ne, rc, klv = C.c_double(), C.c_double(), C.c_double()
per = (C.c_float * rows)()
ok(evaluate_terms(loaded, ds, C.byref(ne), C.byref(rc), C.byref(klv), per))
check(abs(rc.value + klv.value - ne.value) < 1e-6 * abs(ne.value) + 1e-9 and
      abs(sum(per) / rows - ne.value) < 1e-4 * abs(ne.value) + 1e-6, "reconstruction and KL apart")
zt, xt = C.c_void_p(), C.c_void_p()
ok(tensor_from_host(C.byref(zt), 2, (C.c_int64 * 2)(2, 3), (C.c_float * 6)(0.1, 0.2, 0.3, 0.4, 0.5, 0.6)))
ok(tensor_from_host(C.byref(xt), 2, (C.c_int64 * 2)(2, features), (C.c_float * (2 * features))()))
ok(decode_sample(loaded, zt, 5, xt))
drawn = (C.c_float * (2 * features))()
ok(fn("vae_tensor_copy_to_host", C.c_int, C.c_void_p, C.POINTER(C.c_float), C.c_int64)(
    xt, drawn, 2 * features))
check(all(v in (0.0, 1.0) for v in drawn), "Bernoulli draws from the decoder")
tensor_free(zt)
tensor_free(xt)
tr, va = C.c_void_p(), C.c_void_p()
ok(dataset_split(ds, 0.25, 3, C.byref(tr), C.byref(va)))
check(dataset_count(tr) == rows - rows // 4 and dataset_count(va) == rows // 4, "split views")
dataset_free(tr)
dataset_free(va)
clone = C.c_void_p()
ok(model_clone(C.byref(clone), loaded))
parent_w = (C.c_float * (features * 12))()
ok(param_get(loaded, b"enc.w", parent_w, len(parent_w)))
check(param_get(clone, b"enc.w", back, len(back)) == 0 and list(back) == list(parent_w),
      "a clone reads its parent's weights")
check(param_set(clone, b"enc.w", back, len(back)) == 7, "a clone refuses to change them")
zl = C.c_void_p()
ok(tensor_from_host(C.byref(zl), 2, (C.c_int64 * 2)(rows, 3), (C.c_float * (rows * 3))()))
ok(tensor_from_host(C.byref(xt), 2, (C.c_int64 * 2)(rows, features), data))
ok(encode_latent(clone, xt, zl))
tensor_free(zl)
tensor_free(xt)
model_free(clone)
model_free(loaded)
os.remove(path)
os.rmdir(os.path.dirname(path))
dataset_free(ds)
tensor_free(batch)
optimizer_free(opt)
model_free(m)
print("%d passed, 0 failed" % checks)

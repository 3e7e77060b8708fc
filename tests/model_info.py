"""What test_examples.sh needs to know of saved models, through ctypes:
one line per file,
"epoch=E position=P batch=B lr=X rate=R steps=S count=N params=SHA256",
where position and batch place a stopped epoch, lr is the saved
optimizer's learning rate, rate the rate its schedule gives the next step
(vae_optimizer_rate) and steps its step count (lr, rate and steps are
none without a training state), count is vae_model_param_count and params
is the hash of all parameters, bit for bit, so that runs can be compared
without the history's seconds.  Options before the files add to each line
" history:COLUMN=V1,V2,..." (each epoch's value, repr; nan if missing) and
" param:NAME=SHA256" (the hash of that one parameter).
Usage: model_info.py path/to/libvae.so [--history COLUMN] [--param NAME] FILE..."""
import ctypes as C
import hashlib
import sys

lib = C.CDLL(sys.argv[1])


def fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


model_load = fn("vae_model_load", C.c_int, C.POINTER(C.c_void_p), C.c_char_p)
model_free = fn("vae_model_free", None, C.c_void_p)
last_error = fn("vae_last_error", C.c_char_p)
param_count = fn("vae_model_param_count", C.c_int64, C.c_void_p)
params_get = fn("vae_model_params_get", C.c_int, C.c_void_p, C.POINTER(C.c_float), C.c_int64)
epoch = fn("vae_model_epoch", C.c_int, C.c_void_p)
position = fn("vae_model_epoch_position", C.c_int, C.c_void_p)
epoch_batch = fn("vae_model_epoch_batch", C.c_int, C.c_void_p)
has_state = fn("vae_model_has_training_state", C.c_int, C.c_void_p)
optimizer_restore = fn("vae_optimizer_restore", C.c_int, C.POINTER(C.c_void_p), C.c_void_p)
optimizer_get = fn("vae_optimizer_get", C.c_int, C.c_void_p, C.c_int, C.POINTER(C.c_double))
optimizer_free = fn("vae_optimizer_free", None, C.c_void_p)
optimizer_rate = fn("vae_optimizer_rate", C.c_double, C.c_void_p)
optimizer_steps = fn("vae_optimizer_steps", C.c_int64, C.c_void_p)
history_get = fn("vae_model_history_get", C.c_double, C.c_void_p, C.c_int, C.c_char_p)
history_epochs = fn("vae_model_history_epochs", C.c_int, C.c_void_p)
model_graph = fn("vae_model_graph", C.c_void_p, C.c_void_p)
node_count = fn("vae_graph_node_count", C.c_int, C.c_void_p)
node_name = fn("vae_graph_node_name", C.c_char_p, C.c_void_p, C.c_int)
node_size = fn("vae_graph_node_size", C.c_int64, C.c_void_p, C.c_int)
param_get = fn("vae_model_param_get", C.c_int, C.c_void_p, C.c_char_p, C.POINTER(C.c_float),
               C.c_int64)
LEARNING_RATE = 0

args, extras = sys.argv[2:], []
while args and args[0] in ("--history", "--param"):
    extras.append((args[0][2:], args[1]))
    args = args[2:]


def param_hash(m, name):
    g = model_graph(m)
    for i in range(node_count(g)):
        if node_name(g, i) == name.encode():
            values = (C.c_float * node_size(g, i))()
            assert param_get(m, name.encode(), values, len(values)) == 0, last_error()
            return hashlib.sha256(bytes(values)).hexdigest()
    sys.exit("no parameter %s" % name)


for path in args:
    m = C.c_void_p()
    if model_load(C.byref(m), path.encode()) != 0:
        sys.exit("%s: %s" % (path, last_error().decode()))
    n = param_count(m)
    params = (C.c_float * n)()
    assert params_get(m, params, n) == 0, last_error()
    lr = rate = steps = "none"
    if has_state(m):
        opt, value = C.c_void_p(), C.c_double()
        assert optimizer_restore(C.byref(opt), m) == 0, last_error()
        assert optimizer_get(opt, LEARNING_RATE, C.byref(value)) == 0, last_error()
        lr = repr(value.value)
        rate, steps = repr(optimizer_rate(opt)), optimizer_steps(opt)
        optimizer_free(opt)
    line = "epoch=%d position=%d batch=%d lr=%s rate=%s steps=%s count=%d params=%s" % (
        epoch(m), position(m), epoch_batch(m), lr, rate, steps, n,
        hashlib.sha256(bytes(params)).hexdigest())
    for kind, name in extras:
        if kind == "history":
            line += " history:%s=%s" % (name, ",".join(
                repr(history_get(m, e, name.encode())) for e in range(1, history_epochs(m) + 1)))
        else:
            line += " param:%s=%s" % (name, param_hash(m, name))
    print(line)
    model_free(m)

"""What test_examples.sh needs to know of saved models, through ctypes:
one line per file, "epoch=E position=P batch=B lr=X count=N params=SHA256",
where position and batch place a stopped epoch, lr is the saved
optimizer's learning rate (none without a training state), count is
vae_model_param_count and params is the hash of all parameters, bit for
bit, so that runs can be compared without the history's seconds.
Usage: model_info.py path/to/libvae.so FILE..."""
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
LEARNING_RATE = 0

for path in sys.argv[2:]:
    m = C.c_void_p()
    if model_load(C.byref(m), path.encode()) != 0:
        sys.exit("%s: %s" % (path, last_error().decode()))
    n = param_count(m)
    params = (C.c_float * n)()
    assert params_get(m, params, n) == 0, last_error()
    lr = "none"
    if has_state(m):
        opt, value = C.c_void_p(), C.c_double()
        assert optimizer_restore(C.byref(opt), m) == 0, last_error()
        assert optimizer_get(opt, LEARNING_RATE, C.byref(value)) == 0, last_error()
        lr = repr(value.value)
        optimizer_free(opt)
    print("epoch=%d position=%d batch=%d lr=%s count=%d params=%s" % (
        epoch(m), position(m), epoch_batch(m), lr, n, hashlib.sha256(bytes(params)).hexdigest()))
    model_free(m)

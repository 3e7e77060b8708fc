"""The header's enums as IntEnum classes, values as in include/vae.h.

Names drop the C prefix (VAE_ACT_RELU -> Activation.RELU, VAE_ERR_SHAPE ->
Status.SHAPE).  VAE_ROLE_COUNT_ is not part of the ABI and is left out.
tests/python/test_drift.py checks every value against the header.
"""
import enum

# C enum type -> (class name, the prefix its constants drop); for the drift check.
C_ENUMS = {
    "vae_status": ("Status", "VAE_ERR_|VAE_"), "vae_activation": ("Activation", "VAE_ACT_"),
    "vae_likelihood": ("Likelihood", "VAE_LIKELIHOOD_"), "vae_objective": ("Objective", "VAE_OBJECTIVE_"),
    "vae_padding": ("Padding", "VAE_PADDING_"), "vae_made_mask": ("MadeMask", "VAE_MADE_"),
    "vae_role": ("Role", "VAE_ROLE_"), "vae_optimizer_kind": ("OptimizerKind", "VAE_OPTIMIZER_"),
    "vae_optimizer_option": ("OptimizerOption", "VAE_OPT_"), "vae_lr_schedule": ("LrSchedule", "VAE_LR_"),
    "vae_node_kind": ("NodeKind", "VAE_NODE_"), "vae_log_level": ("LogLevel", "VAE_LOG_"),
    "vae_comm_type": ("CommType", "VAE_COMM_"),
}

class Status(enum.IntEnum):
    """vae_status"""
    OK = 0
    ARGUMENT = 1
    NO_MEMORY = 2
    IO = 3
    FORMAT = 4
    SHAPE = 5
    NOT_FINITE = 6
    STATE = 7
    UNSUPPORTED = 8
    STOPPED = 9
    CHECKSUM = 10
    THREAD = 11
    COMM = 12

class Activation(enum.IntEnum):
    """vae_activation"""
    NONE = 0
    RELU = 1
    LEAKY_RELU = 2
    TANH = 3
    SIGMOID = 4
    SOFTPLUS = 5

class Likelihood(enum.IntEnum):
    """vae_likelihood"""
    BERNOULLI = 0
    GAUSSIAN_UNIT = 1
    GAUSSIAN_LEARNED = 2
    GAUSSIAN_UNIT_LINEAR = 3
    GAUSSIAN_LEARNED_LINEAR = 4

class Objective(enum.IntEnum):
    """vae_objective"""
    ELBO = 0
    PIXEL_MEAN = 1

class Padding(enum.IntEnum):
    """vae_padding"""
    VALID = 0
    SAME = 1

class MadeMask(enum.IntEnum):
    """vae_made_mask"""
    INPUT_TO_HIDDEN = 0
    HIDDEN_TO_OUTPUT = 1

class Role(enum.IntEnum):
    """vae_role"""
    INPUT = 0
    LATENT_MEAN = 1
    LATENT_LOGVAR = 2
    LATENT = 3
    LOGITS = 4
    OBJECTIVE = 5
    NELBO = 6
    DECODED = 7
    LOG_WEIGHT = 8
    RECON = 9
    KL = 10
    WEIGHTED_KL = 11

class OptimizerKind(enum.IntEnum):
    """vae_optimizer_kind"""
    SGD = 0
    RMSPROP = 1
    ADAM = 2

class OptimizerOption(enum.IntEnum):
    """vae_optimizer_option"""
    LEARNING_RATE = 0
    MOMENTUM = 1
    BETA1 = 2
    BETA2 = 3
    EPSILON = 4
    RHO = 5
    CLIP_NORM = 6
    WEIGHT_DECAY = 7
    SCHEDULE = 8
    SCHEDULE_STEPS = 9
    SCHEDULE_GAMMA = 10
    MIN_RATE = 11
    WARMUP_STEPS = 12

class LrSchedule(enum.IntEnum):
    """vae_lr_schedule"""
    CONSTANT = 0
    STEP = 1
    EXPONENTIAL = 2
    COSINE = 3

class LogLevel(enum.IntEnum):
    """vae_log_level"""
    ERROR = 0
    WARNING = 1
    INFO = 2
    DEBUG = 3

class NodeKind(enum.IntEnum):
    """vae_node_kind"""
    INPUT = 0
    PARAM = 1
    NOISE = 2
    COMPUTED = 3

class CommType(enum.IntEnum):
    """vae_comm_type: the element type a communicator's sum gets"""
    FLOAT32 = 0
    FLOAT64 = 1

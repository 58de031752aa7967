"""qlib: the helper library of the course "Model quantization, hands-on".

Every formula of the course is one small function here; the notebooks call them.
"""

from .linear import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .bn import *  # noqa: F401,F403
from .snpe import *  # noqa: F401,F403
from .schemes import *  # noqa: F401,F403
from .granularity import *  # noqa: F401,F403
from . import data, nn  # noqa: F401
from .data import load_digits  # noqa: F401
from .nn import reference_model  # noqa: F401
from .observers import *  # noqa: F401,F403
from . import ptq  # noqa: F401
from . import integer, export  # noqa: F401
from .integer import quantize_multiplier, multiply_by_quantized_multiplier  # noqa: F401
from . import qat  # noqa: F401
from . import cle, onnx_graph, realmodel, recognizer, textlines  # noqa: F401
from . import minifloat, blockfloat  # noqa: F401
from . import adaround, bias_correction  # noqa: F401
from . import codebook  # noqa: F401
from .codebook import *  # noqa: F401,F403

__version__ = "0.1.0"

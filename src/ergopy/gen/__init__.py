"""The vocabulary of ergopy: identifiers, options, errors, system messages and behaviour bases.

``gen`` imports nothing else of ergopy; read it to learn the model.
"""

from .application import *  # noqa: F403
from .application import __all__ as _application_all
from .errors import *  # noqa: F403
from .errors import __all__ as _errors_all
from .identifiers import *  # noqa: F403
from .identifiers import __all__ as _identifiers_all
from .messages import *  # noqa: F403
from .messages import __all__ as _messages_all
from .network import *  # noqa: F403
from .network import __all__ as _network_all
from .options import *  # noqa: F403
from .options import __all__ as _options_all
from .process import *  # noqa: F403
from .process import __all__ as _process_all

__all__ = [
    *_application_all,
    *_errors_all,
    *_identifiers_all,
    *_messages_all,
    *_network_all,
    *_options_all,
    *_process_all,
]

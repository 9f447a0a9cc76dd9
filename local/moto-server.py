"""
moto's server with the test-side extensions of local/moto_ext installed. Same arguments as
`python3 -m moto.server` (-H HOST -p PORT ...); MOTO_AMIS_PATH is read by moto itself.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import moto_ext  # noqa: E402
from moto.server import main  # noqa: E402

if __name__ == "__main__":
    moto_ext.install()
    main(sys.argv[1:])

"""`python -m fastric HANDLER`: run the Lambda runtime loop (drop-in for `python -m awslambdaric`)."""

import sys

from fastric.cli import main

if __name__ == "__main__":
    main(sys.argv)

import sys

from nas_engine.cli import main

sys.exit(main())

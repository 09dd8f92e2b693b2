import sys

from scim_service.cli import main

sys.exit(main())

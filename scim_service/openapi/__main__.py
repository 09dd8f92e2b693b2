"""`python -m scim_service.openapi > scim_service/openapi.json`: print the document."""

import sys

from scim_service.openapi import render

sys.stdout.buffer.write(render())

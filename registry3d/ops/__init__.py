"""Operating a registry: backup, restore, verify and the deployment doctor.

The command line (``registry3d backup``, ``restore``, ``verify``,
``doctor``) is a thin layer over this package.
"""


class OpsError(Exception):
    """A refusal or failure, said in one line for the person running the command."""

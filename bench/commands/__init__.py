"""The commands of ``python -m bench`` that sequence measuring, reading and reporting."""

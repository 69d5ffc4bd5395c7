"""Writes to the data of record (HackSoft style: services write, selectors read)."""

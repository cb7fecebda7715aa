"""Provenance: Content Credentials (C2PA) signing and verifying, and "reproduce exactly"."""

"""The offline stack: what runs the product on one machine with no AWS account (see DESIGN.md)."""

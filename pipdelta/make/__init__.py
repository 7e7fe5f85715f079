"""The maker's side: divine each member's compression, diff the contents, write the patch."""

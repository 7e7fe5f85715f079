"""What the maker and the applier share: the wheel's ZIP layout, the source blob, the patch container."""

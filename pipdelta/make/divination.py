"""Find the recipe that re-creates a member's compressed bytes from its content."""

from __future__ import annotations

from pipdelta.engines.recipes import CANDIDATES, Recipe
from pipdelta.errors import EngineMismatch


class Diviner:
    """Tries the candidate recipes, the ones that worked before first (a wheel is made by one tool)."""

    def __init__(self) -> None:
        self._order: list[Recipe] = list(CANDIDATES)
        self.found: dict[str, int] = {}
        self.missed = 0

    def recipe_for(self, content: bytes, compressed: bytes) -> Recipe | None:
        for recipe in list(self._order):
            if self._reproduces(recipe, content, compressed):
                self._order.remove(recipe)
                self._order.insert(0, recipe)
                self.found[str(recipe)] = self.found.get(str(recipe), 0) + 1
                return recipe
        self.missed += 1
        return None

    def _reproduces(self, recipe: Recipe, content: bytes, compressed: bytes) -> bool:
        try:
            return recipe.reproduces(content, compressed)
        except EngineMismatch:  # an engine this machine lacks (zlib-ng 2.2 without PIPDELTA_ZLIBNG22)
            self._order.remove(recipe)
            return False

"""Find the recipe that re-creates a member's compressed bytes from its content."""

from __future__ import annotations

from pipdelta.engines.recipes import CANDIDATES, Recipe


class Diviner:
    """Tries the candidate recipes, the ones that worked before first (a wheel is made by one tool)."""

    def __init__(self) -> None:
        self._order: list[Recipe] = list(CANDIDATES)
        self.found: dict[str, int] = {}
        self.missed = 0

    def recipe_for(self, content: bytes, compressed: bytes) -> Recipe | None:
        for index, recipe in enumerate(self._order):
            if recipe.reproduces(content, compressed):
                if index:
                    self._order.insert(0, self._order.pop(index))
                self.found[str(recipe)] = self.found.get(str(recipe), 0) + 1
                return recipe
        self.missed += 1
        return None

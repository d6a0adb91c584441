"""How many image tokens a picture costs, family by family: a budget in image tokens -> the pixels
to fit the picture into and the processor's own caps, so that every model family spends about the
budget it is given (``[model] screen_image_tokens`` and the others) and no family silently tiles a
screen into thousands of tokens.

Budgets reach the captioner in pixels at Qwen2-VL's rate (one token per 28 x 28 block, ``TOKEN_PX``),
the unit the settings have always meant; ``image_inputs`` turns them back into tokens.
"""

from __future__ import annotations

__all__ = ["TOKEN_PX", "image_inputs"]

TOKEN_PX = 28 * 28  # pixels per image token in the settings' unit (Qwen2-VL: 14 px patches, 2 x 2 merged)


def image_inputs(processor, pixels: int) -> tuple[int, dict]:
    """(the pixels to fit the image into, keyword arguments for ``processor(...)``) for a budget of
    ``pixels`` (``TOKEN_PX`` per image token) with ``processor``, the checkpoint's AutoProcessor."""
    tokens = max(1, pixels // TOKEN_PX)
    ip = getattr(processor, "image_processor", None)
    for rule in _RULES:
        found = rule(ip, tokens)
        if found is not None:
            return found
    return pixels, {}


def _qwen(ip, tokens: int):
    """Qwen2-VL, Qwen2.5-VL, Qwen3-VL: dynamic resolution, one token per (patch x merge)^2 pixels;
    sides are rounded to whole merged patches, which can overshoot the budget by a row, so the
    processor's own pixel limits bound it exactly. Below its floor (``shortest_edge``) a processor
    rounds sides up, so the floor is kept under half the budget (Qwen3-VL's is 64 tokens: at a
    budget of 64 it gave 77)."""
    if not (getattr(ip, "merge_size", None) and getattr(ip, "patch_size", None)):
        return None
    budget = tokens * (ip.patch_size * ip.merge_size) ** 2
    shortest = (ip.size.get("shortest_edge") if isinstance(ip.size, dict) else ip.size.shortest_edge) or 0
    return budget, {"images_kwargs": {"size": {"shortest_edge": min(shortest, budget // 2), "longest_edge": budget}}}


# -- InternVL3, Qwen3-VL (more) ---------------------------------------------------------------------
# Qwen3-VL (16 px patches, 2 x 2 merged: one token per 32 x 32 block) is the `_qwen` rule's.

TILE_TOKENS = 256  # InternVL3's image_seq_length: 448 px tile, 14 px patches, pixel shuffle 0.5 (GOT-OCR2's too)


def _tiles(ip, tokens: int):
    """InternVL (GotOcr2ImageProcessor): an image costs ``TILE_TOKENS`` per tile. Tiled
    (``crop_to_patches``), it is a grid of up to ``max_patches`` tiles, plus a thumbnail tile when
    the grid has more than one; untiled it is one tile, the whole image squeezed into it.

    The caps keep the cost at most ``tokens``, except that one tile (256 tokens) is the floor: a
    budget under 768 tokens (a grid of two and its thumbnail) gives one tile, more gives a grid of at
    most ``tokens // 256 - 1`` tiles. The processor resizes the image to its tile canvas itself;
    the pixels returned only shed what it would throw away anyway, with room (twice each side) for
    a canvas whose shape differs from the image's."""
    if not all(hasattr(ip, a) for a in ("crop_to_patches", "min_patches", "max_patches")):
        return None
    tile = ip.size["height"] * ip.size["width"] if isinstance(ip.size, dict) else ip.size.height * ip.size.width
    grid = tokens // TILE_TOKENS - 1  # tiles, the thumbnail aside
    if grid < 2:
        return 4 * tile, {"images_kwargs": {"crop_to_patches": False}}
    return 4 * tile * grid, {"images_kwargs": {"crop_to_patches": True, "min_patches": 1, "max_patches": grid}}


# -- SmolVLM2, LFM2-VL --------------------------------------------------------------------------------

# SmolVLM's image tokens per square tile, by the tile's side (``max_image_size``): its image
# processor knows neither the vision patch nor the pixel shuffle, so the published pairs stand in
# (SmolVLM2-256M/500M: 512 px, 16 px patches, shuffle 4; SmolVLM2-2.2B: 384, 14, 3; Idefics3: 364, 14, 2).
SMOLVLM_TILE_TOKENS = {512: 64, 384: 81, 364: 169}


def _edge(size) -> int | None:
    """The ``longest_edge`` of a size (a dict or a SizeDict), if it has one."""
    return size.get("longest_edge") if isinstance(size, dict) else getattr(size, "longest_edge", None)


def _smolvlm(ip, tokens: int):
    """SmolVLM2 (SmolVLMImageProcessor; Idefics3's is alike): the image's longest side is scaled to
    ``size``'s longest edge (up or down), both sides are rounded up to whole square tiles of
    ``max_image_size``, and with more than one tile every tile and a global view of the whole image
    cost ``SMOLVLM_TILE_TOKENS`` each (64 for SmolVLM2-500M).

    The caps cannot see the image, so they hold for the costliest shape, a square: a longest side
    of k tiles costs k * k + 1 tiles, and k is the largest whose cost fits ``tokens`` (at most the
    shipped longest edge). A 16:10 screen costs less: k = 2 gives it 5 tiles (320 tokens), k = 3
    gives 7 (448). The floor is one tile (64 tokens): a budget under 5 tiles (320 tokens) turns the
    splitting off, and the whole image is squeezed into one tile. The pixels returned keep the
    image's longest side at least the one the processor scales it to."""
    tile, longest = _edge(getattr(ip, "max_image_size", None) or {}), _edge(getattr(ip, "size", None) or {})
    if not (tile and longest and hasattr(ip, "do_image_splitting")):
        return None
    per_tile = SMOLVLM_TILE_TOKENS.get(tile) or -(-tile * tile * 169 // 364 ** 2)  # unknown: the densest known
    k = 1
    while k < longest // tile and ((k + 1) ** 2 + 1) * per_tile <= tokens:
        k += 1
    kwargs = {"do_image_splitting": k > 1, "size": {"longest_edge": k * tile}, "max_image_size": {"longest_edge": tile}}
    return (k * tile) ** 2, {"images_kwargs": kwargs}


def _lfm2_vl(ip, tokens: int):
    """LFM2-VL (Lfm2VlImageProcessor): an image up to about twice ``max_image_tokens``' pixels (or
    any image, splitting off) is one picture of at most ``max_image_tokens`` tokens, one per 32 x 32
    block (16 px patches, unshuffled by 2); a larger one is cut into a grid of ``min_tiles`` to
    ``max_tiles`` tiles, each (512 / 32) ** 2 = 256 tokens, plus, with ``use_thumbnail``, the picture.

    The caps keep the cost at most ``tokens``: a budget that holds a grid of two tiles (and the
    thumbnail) allows a grid of up to ``tokens // 256`` tiles (at most the shipped ``max_tiles``);
    a smaller one turns the splitting off and caps the one picture at ``tokens`` (at most the
    shipped ``max_image_tokens``; its floor: the budget itself, at least one 32 x 32 block). A
    1280 x 800 screen: 240 tokens at 256, 126 at 128, 2 tiles (512) at 1024. The pixels returned
    are the picture's, or the grid's with room (twice each side) for a canvas of another shape."""
    names = ("tile_size", "encoder_patch_size", "downsample_factor", "max_image_tokens", "min_image_tokens",
             "min_tiles", "max_tiles", "use_thumbnail", "max_pixels_tolerance")
    if not all(hasattr(ip, n) for n in names):
        return None
    block = ip.encoder_patch_size * ip.downsample_factor
    per_tile = (-(-ip.tile_size // block)) ** 2
    picture = max(1, min(tokens, ip.max_image_tokens))
    # The processor rounds an image below min_image_tokens up, side by side: half the cap leaves it room.
    caps = {"max_image_tokens": picture, "min_image_tokens": min(ip.min_image_tokens, picture // 2)}
    tiles = min(ip.max_tiles, (tokens - (picture if ip.use_thumbnail else 0)) // per_tile)
    if tiles < max(2, ip.min_tiles):
        return picture * block * block, {"images_kwargs": {"do_image_splitting": False, **caps}}
    return 4 * tiles * ip.tile_size ** 2, {"images_kwargs": {"do_image_splitting": True, "max_tiles": tiles, **caps}}


_RULES = [_qwen, _tiles, _smolvlm, _lfm2_vl]

"""Made-up names for generated instruments and clients, from small word lists, and the
language a client asks to be written in (FEED.md's optional `language`)."""

from __future__ import annotations

from collections.abc import Sequence

# Small word lists for names; none contains a quote, backslash or control character, so
# records built from them by f-string are valid JSON (checked once, below).
_WORDS_A = (
    "Harbour", "Pacific", "Golden", "Eastern", "Orient", "Summit", "Jade", "Lion", "Pearl",
    "Dragon", "Silver", "Crown", "Straits", "Kowloon", "Victoria", "Marina", "Atlas",
    "Pioneer", "Evergreen", "Northstar", "Bright", "United", "Great Wall", "Sunrise",
    "Emerald", "Phoenix", "Lotus", "Meridian", "Horizon", "Keystone",
)  # fmt: skip
_WORDS_B = (
    "Land", "Power", "Telecom", "Shipping", "Logistics", "Pharma", "Foods", "Energy",
    "Semiconductor", "Bank", "Insurance", "Property", "Retail", "Motors", "Resources",
    "Healthcare", "Software", "Gaming", "Textiles", "Airlines", "Infrastructure", "Media",
    "Biotech", "Materials", "Water", "Steel", "Solar", "Hotels", "Securities", "Electric",
)  # fmt: skip
_SUFFIX = {"HK": ("Holdings", "Group", "Ltd", "International"),
           "SG": ("Ltd", "Trust", "REIT", "Holdings"),
           "US": ("Inc.", "Corp.", "Co.", "Technologies")}  # fmt: skip
_HK_SURNAMES = ("陳", "李", "張", "黃", "何", "林", "吳", "劉", "梁", "鄭", "王", "周", "馮", "郭")
_HK_GIVEN = ("志", "偉", "家", "嘉", "美", "文", "國", "小", "明", "華", "玲", "俊", "詠", "子")
_HK_ROMAN = ("Chan", "Lee", "Cheung", "Wong", "Ho", "Lam", "Ng", "Lau", "Leung", "Cheng")
_HK_FIRST = ("Ka Ming", "Wai Kit", "Mei Yee", "Chi Keung", "Siu Fong", "Tsz Ching", "Ho Yin")
_SG_SURNAMES = ("Tan", "Lim", "Lee", "Ng", "Ong", "Wong", "Goh", "Chua", "Koh", "Teo", "Low")
_SG_GIVEN = ("Wei Ling", "Jun Jie", "Hui Min", "Kok Wah", "Siew Lan", "Zhi Hao", "Pei Shan")
_SG_OTHER = ("Nur Aisyah binte Ahmad", "Muhammad Hafiz", "Priya Raman", "Arjun Pillai")
_US_FIRST = ("James", "Maria", "Robert", "Linda", "Michael", "Sofia", "David", "Emily", "Wei")
_US_LAST = ("Smith", "Johnson", "Garcia", "Miller", "Davis", "Chen", "Patel", "Nguyen", "Kim")
_FIRMS = ("Capital", "Investments", "Family Office", "Asset Management", "Trading")


def _check_words() -> None:
    tables: list[Sequence[str]] = [_WORDS_A, _WORDS_B, _HK_SURNAMES, _HK_GIVEN, _HK_ROMAN]
    tables += [_HK_FIRST, _SG_SURNAMES, _SG_GIVEN, _SG_OTHER, _US_FIRST, _US_LAST, _FIRMS]
    tables += list(_SUFFIX.values())
    for words in tables:
        for word in words:
            assert not any(c in word for c in '"\\'), word
            assert word.isprintable(), word


_check_words()


def instrument_name(symbol: str, market: str) -> str:
    """A company name that is a deterministic function of the symbol: no random draws."""
    digest = sum(ord(c) * (k + 7) for k, c in enumerate(symbol))
    return (
        f"{_WORDS_A[digest % len(_WORDS_A)]} {_WORDS_B[(digest // 7) % len(_WORDS_B)]} "
        f"{_SUFFIX[market][(digest // 11) % 4]}"
    )


def client_name(market: str, draw: int) -> str:
    """A client's name for the market, picked by `draw` (a random 30-bit number)."""
    if draw % 23 == 0:  # a corporate client now and then
        return f"{_WORDS_A[draw % len(_WORDS_A)]} {_FIRMS[(draw >> 5) % len(_FIRMS)]} Ltd"
    if market == "HK":
        if draw % 2:
            return (
                _HK_SURNAMES[(draw >> 1) % len(_HK_SURNAMES)]
                + _HK_GIVEN[(draw >> 5) % len(_HK_GIVEN)]
                + _HK_GIVEN[(draw >> 9) % len(_HK_GIVEN)]
            )
        return (
            f"{_HK_ROMAN[(draw >> 1) % len(_HK_ROMAN)]} {_HK_FIRST[(draw >> 5) % len(_HK_FIRST)]}"
        )
    if market == "SG":
        if draw % 7 == 0:
            return _SG_OTHER[(draw >> 3) % len(_SG_OTHER)]
        surname = _SG_SURNAMES[(draw >> 1) % len(_SG_SURNAMES)]
        return f"{surname} {_SG_GIVEN[(draw >> 5) % len(_SG_GIVEN)]}"
    return f"{_US_FIRST[(draw >> 1) % len(_US_FIRST)]} {_US_LAST[(draw >> 5) % len(_US_LAST)]}"


def client_language(market: str, draw: int) -> str | None:
    """The `language` the feed gives for the client named by `client_name(market, draw)`:
    from the same draw (no random draw of its own, so the book's numbers stay as they
    were). Most clients written in Chinese characters ask for Traditional Chinese (tagged
    `zh-Hant` or `zh-HK`, as back offices differ), some Singapore Chinese clients for
    Simplified, a few Malay-speaking ones for `ms` (a language the desk has no templates
    for: it falls back, and says so); everyone else gives none (the market's default)."""
    pick = (draw >> 13) % 4
    if draw % 23 == 0 or market == "US":
        return None
    if market == "HK":
        if draw % 2:  # a name in Chinese characters
            return "zh-HK" if pick == 0 else "zh-Hant"
        return "en" if pick == 0 else None
    if draw % 7 == 0:
        malay = _SG_OTHER[(draw >> 3) % len(_SG_OTHER)] in _SG_OTHER[:2]
        return "ms" if malay and pick < 2 else None
    return "zh-Hans" if pick < 2 else None

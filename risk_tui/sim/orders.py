"""The simulated broker gateway: liquidation orders and client messages (FEED.md POSTs).

Rules the simulator applies (a broker's would be similar; the desk must cope with both):

- Idempotent on `client_order_id` / `message_id`: the same id again returns the
  existing record (200) and never creates a second one, whatever the new body says.
- 422, nothing recorded: malformed body; unknown account or symbol; side not `sell` or
  `buy`; quantity not a positive whole number written as a decimal string; a limit
  order without a positive decimal-string `limit_price`, or a market order with one;
  a side that does not reduce the position (`sell` more than the long held, `buy` more
  than the short).
- 201 with status `rejected` and a `reject_reason` — the request was fine, the broker
  refuses it: the instrument is suspended or delisted; the quantity is not a whole
  number of board lots and is not the whole holding (odd lots are accepted only to
  close a position out); the quantity plus what is already working on the same side
  exceeds the position.
- Orders fill only while their instrument's market is in its regular session, as a
  real broker's do (`market_hours`, from the trading calendars: not before the open, in
  HK's lunch break, after the close, on weekends or holidays); outside it an order is
  accepted and stays `working` until the market opens. Without `market_hours` the
  simulator runs a 24-hour test market (the tests' default: no wall-clock hour matters).
- Market orders fill on the next tick at the simulated price; limit orders on the
  first tick the price is at or through the limit. A tick fills at most
  `lots_per_tick` × max(lot, 100) shares of one order, so a big order fills partially
  across ticks. A suspended instrument does not fill. An order whose position has gone
  meanwhile is cancelled with a `cancel_reason`.
- Each fill comes back through /v1/changes as a position record (quantity "0" when
  closed) and a cash record in the instrument's currency: a sale adds quantity × price,
  a cover subtracts it.
- Messages are `queued`, then on the next tick `sent` — or `failed` when the account
  has no e-mail address (channel `email`) or phone number (`sms`, `voice`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from risk_tui.core.calendar import TradingCalendars
from risk_tui.core.model import Market
from risk_tui.sim.changes import ChangeSet
from risk_tui.sim.store import SimBook, decimal_text, quantity_text

ORDER_STATUSES = ("working", "partially_filled", "filled", "cancelled", "rejected")
OPEN_STATUSES = frozenset({"working", "partially_filled"})
CHANNELS = ("app", "email", "sms", "voice")
MAX_ID = 128
MAX_TEXT = 10_000


# Whether a market (FEED.md's `market`, e.g. "HK") is trading at a moment.
MarketHours = Callable[[str, datetime], bool]


def exchange_hours(calendars: TradingCalendars) -> MarketHours:
    """Fill in each market's regular session by its trading calendar (an unknown market,
    or a day no calendar covers, never trades)."""

    def trading(market: str, now: datetime) -> bool:
        try:
            return calendars.is_trading(Market(market), now)
        except ValueError:
            return False

    return trading


class Invalid(Exception):
    """A request the gateway refuses with 422; str() is the message."""


@dataclass(frozen=True, slots=True)
class Fill:
    quantity: Decimal
    price: Decimal
    at: str


@dataclass
class Order:
    order_id: str
    client_order_id: str
    account_id: str
    symbol: str
    side: str
    order_type: str
    quantity: Decimal
    limit_price: Decimal | None
    reason: str | None
    reference: str | None
    operator: str | None
    created_at: str
    status: str = "working"
    reject_reason: str | None = None
    cancel_reason: str | None = None
    updated_at: str = ""
    fills: list[Fill] = field(default_factory=list)

    @property
    def filled_quantity(self) -> Decimal:
        return sum((f.quantity for f in self.fills), Decimal(0))

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled_quantity

    @property
    def avg_price(self) -> Decimal | None:
        filled = self.filled_quantity
        if not filled:
            return None
        notional = sum((f.quantity * f.price for f in self.fills), Decimal(0))
        return (notional / filled).quantize(Decimal("0.000001"))

    def to_json(self) -> dict[str, Any]:
        avg = self.avg_price
        return {
            "order_id": self.order_id,
            "client_order_id": self.client_order_id,
            "account_id": self.account_id,
            "symbol": self.symbol,
            "side": self.side,
            "order_type": self.order_type,
            "quantity": quantity_text(self.quantity),
            "limit_price": None if self.limit_price is None else decimal_text(self.limit_price),
            "status": self.status,
            "filled_quantity": quantity_text(self.filled_quantity),
            "avg_price": None if avg is None else decimal_text(avg),
            "reject_reason": self.reject_reason,
            "cancel_reason": self.cancel_reason,
            "reason": self.reason,
            "reference": self.reference,
            "operator": self.operator,
            "created_at": self.created_at,
            "updated_at": self.updated_at or self.created_at,
            "fills": [
                {"quantity": quantity_text(f.quantity), "price": decimal_text(f.price), "at": f.at}
                for f in self.fills
            ],
        }


@dataclass
class Message:
    message_id: str
    account_id: str
    channel: str
    subject: str | None
    body: str
    reference: str | None
    operator: str | None
    created_at: str
    status: str = "queued"
    sent_at: str | None = None
    failure_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "status": self.status,
            "account_id": self.account_id,
            "channel": self.channel,
            "subject": self.subject,
            "body": self.body,
            "reference": self.reference,
            "operator": self.operator,
            "created_at": self.created_at,
            "sent_at": self.sent_at,
            "failure_reason": self.failure_reason,
        }


def idempotency_key(body: Any, field_name: str) -> str | None:
    """The request's idempotency key, if it has a usable one."""
    if not isinstance(body, dict):
        return None
    value = body.get(field_name)
    if isinstance(value, str) and 0 < len(value) <= MAX_ID:
        return value
    return None


class OrderDesk:
    """Orders and messages received, by id, with a count of POSTs per idempotency key."""

    def __init__(
        self, book: SimBook, *, lots_per_tick: int = 100, market_hours: MarketHours | None = None
    ) -> None:
        self.book = book
        self.lots_per_tick = lots_per_tick
        self.market_hours = market_hours  # None: a 24-hour test market
        self.orders: dict[str, Order] = {}
        self.by_client_id: dict[str, Order] = {}
        self.open: dict[str, Order] = {}  # working and partially filled, oldest first
        self.order_posts: Counter[str] = Counter()
        self.cancel_posts: Counter[str] = Counter()  # cancel POSTs per order_id
        self.messages: dict[str, Message] = {}
        self.queued: dict[str, Message] = {}
        self.message_posts: Counter[str] = Counter()

    # -- orders -------------------------------------------------------------------------

    def post_order(self, body: Any, now: datetime) -> tuple[int, dict[str, Any]]:
        """201 with a new order, 200 with the existing one; Invalid for 422."""
        key = idempotency_key(body, "client_order_id")
        if key is None:
            raise Invalid(
                f"client_order_id must be a non-empty string of at most {MAX_ID} characters"
            )
        self.order_posts[key] += 1
        existing = self.by_client_id.get(key)
        if existing is not None:
            return 200, existing.to_json()
        order = self._validated(body, key, now)
        self._broker_checks(order)
        self.orders[order.order_id] = order
        self.by_client_id[key] = order
        if order.status in OPEN_STATUSES:
            self.open[order.order_id] = order
        return 201, order.to_json()

    def cancel(self, order_id: str, now: datetime) -> dict[str, Any] | None:
        self.cancel_posts[order_id] += 1
        order = self.orders.get(order_id)
        if order is None:
            return None
        if order.status in OPEN_STATUSES:
            order.status = "cancelled"
            order.updated_at = now.isoformat()
            self.open.pop(order_id, None)
        return order.to_json()

    def list_orders(self, status: str | None, account_id: str | None) -> list[dict[str, Any]]:
        return [
            order.to_json()
            for order in self.orders.values()
            if (status is None or order.status == status)
            and (account_id is None or order.account_id == account_id)
        ]

    def _validated(self, body: dict[str, Any], key: str, now: datetime) -> Order:
        account_id = _text(body, "account_id", required=True)
        symbol = _text(body, "symbol", required=True)
        assert account_id is not None
        assert symbol is not None
        if self.book.raw("accounts", (account_id,)) is None:
            raise Invalid(f"unknown account {account_id}")
        if self.book.raw("instruments", (symbol,)) is None:
            raise Invalid(f"unknown symbol {symbol}")
        side = body.get("side")
        if side not in ("sell", "buy"):
            raise Invalid("side must be sell (reduce a long) or buy (cover a short)")
        order_type = body.get("order_type")
        if order_type not in ("market", "limit"):
            raise Invalid("order_type must be market or limit")
        quantity = _decimal(body.get("quantity"), "quantity")
        if quantity <= 0 or quantity != quantity.to_integral_value():
            raise Invalid("quantity must be a positive whole number of shares")
        limit_price: Decimal | None = None
        if order_type == "limit":
            limit_price = _decimal(body.get("limit_price"), "limit_price")
            if limit_price <= 0:
                raise Invalid("limit_price must be positive")
        elif body.get("limit_price") is not None:
            raise Invalid("a market order takes no limit_price (null)")
        held = self._held(account_id, symbol)
        if side == "sell" and quantity > max(held, Decimal(0)):
            raise Invalid(
                f"sell {quantity_text(quantity)} {symbol}: account {account_id} is long "
                f"{quantity_text(max(held, Decimal(0)))}; sell only reduces a long"
            )
        if side == "buy" and quantity > max(-held, Decimal(0)):
            raise Invalid(
                f"buy {quantity_text(quantity)} {symbol}: account {account_id} is short "
                f"{quantity_text(max(-held, Decimal(0)))}; buy only covers a short"
            )
        stamp = now.isoformat()
        return Order(
            order_id=f"SO{len(self.orders) + 1:08d}",
            client_order_id=key,
            account_id=account_id,
            symbol=symbol,
            side=side,
            order_type=order_type,
            quantity=quantity,
            limit_price=limit_price,
            reason=_text(body, "reason"),
            reference=_text(body, "reference"),
            operator=_text(body, "operator"),
            created_at=stamp,
            updated_at=stamp,
        )

    def _broker_checks(self, order: Order) -> None:
        instrument = self.book.get("instruments", (order.symbol,)) or {}
        held = abs(self._held(order.account_id, order.symbol))
        lot = _lot(instrument)
        working = sum(
            (
                o.remaining
                for o in self.open.values()
                if (o.account_id, o.symbol, o.side) == (order.account_id, order.symbol, order.side)
            ),
            Decimal(0),
        )
        if instrument.get("delisted") is True:
            order.reject_reason = f"{order.symbol} is delisted: no market to trade on"
        elif instrument.get("suspended") is True:
            order.reject_reason = f"{order.symbol} is suspended from trading"
        elif order.quantity % lot != 0 and order.quantity != held:
            order.reject_reason = (
                f"odd lot: {quantity_text(order.quantity)} is not a whole number of board "
                f"lots of {quantity_text(lot)}; send whole lots, or the whole holding "
                f"({quantity_text(held)}) to close it out"
            )
        elif working + order.quantity > held:
            order.reject_reason = (
                f"{quantity_text(working)} already working on the same side: "
                f"{quantity_text(order.quantity)} more would exceed the position "
                f"({quantity_text(held)})"
            )
        if order.reject_reason is not None:
            order.status = "rejected"

    def _held(self, account_id: str, symbol: str) -> Decimal:
        record = self.book.get("positions", (account_id, symbol))
        if record is None:
            return Decimal(0)
        try:
            return Decimal(record["quantity"])
        except (InvalidOperation, KeyError, TypeError):
            return Decimal(0)

    # -- messages -----------------------------------------------------------------------

    def post_message(self, body: Any, now: datetime) -> tuple[int, dict[str, Any]]:
        key = idempotency_key(body, "message_id")
        if key is None:
            raise Invalid(f"message_id must be a non-empty string of at most {MAX_ID} characters")
        self.message_posts[key] += 1
        existing = self.messages.get(key)
        if existing is not None:
            return 200, existing.to_json()
        account_id = _text(body, "account_id", required=True)
        assert account_id is not None
        if self.book.raw("accounts", (account_id,)) is None:
            raise Invalid(f"unknown account {account_id}")
        channel = body.get("channel")
        if channel not in CHANNELS:
            raise Invalid(f"channel must be one of {', '.join(CHANNELS)}")
        text = _text(body, "body", required=True)
        assert text is not None
        message = Message(
            message_id=key,
            account_id=account_id,
            channel=channel,
            subject=_text(body, "subject"),
            body=text,
            reference=_text(body, "reference"),
            operator=_text(body, "operator"),
            created_at=now.isoformat(),
        )
        self.messages[key] = message
        self.queued[key] = message
        return 201, message.to_json()

    # -- a tick -------------------------------------------------------------------------

    def advance(self, changes: ChangeSet) -> None:
        """Fill what can fill at the tick's prices; send what was queued."""
        stamp = changes.ts
        for order in list(self.open.values()):
            self._try_fill(order, changes, stamp)
            if order.status not in OPEN_STATUSES:
                self.open.pop(order.order_id, None)
        for message in self.queued.values():
            self._send(message, stamp)
        self.queued.clear()

    def _try_fill(self, order: Order, changes: ChangeSet, stamp: str) -> None:
        instrument = self.book.get("instruments", (order.symbol,)) or {}
        quote = self.book.get("quotes", (order.symbol,))
        if instrument.get("suspended") is True or instrument.get("delisted") is True:
            return
        if self.market_hours is not None and not self.market_hours(
            str(instrument.get("market", "")), changes.now
        ):
            return  # the market is closed: the order stays working until it opens
        if quote is None:
            return
        try:
            price = Decimal(quote["price"])
        except (InvalidOperation, KeyError, TypeError):
            return
        if price <= 0 or not _crosses(order, price):
            return
        position = self.book.get("positions", (order.account_id, order.symbol))
        held = self._held(order.account_id, order.symbol)
        available = max(held, Decimal(0)) if order.side == "sell" else max(-held, Decimal(0))
        if position is None or available <= 0:
            order.status = "cancelled"
            order.cancel_reason = "the position was closed before the order could fill"
            order.updated_at = stamp
            return
        liquidity = Decimal(self.lots_per_tick) * max(_lot(instrument), Decimal(100))
        quantity = min(order.remaining, available, liquidity)
        order.fills.append(Fill(quantity, price, stamp))
        order.status = "filled" if order.remaining == 0 else "partially_filled"
        order.updated_at = stamp
        signed = -quantity if order.side == "sell" else quantity
        changes.put(
            "positions",
            {**position, "quantity": quantity_text(held + signed)},
        )
        currency = str(instrument.get("currency", ""))
        cash = self.book.get("cash", (order.account_id, currency))
        balance = Decimal(0)
        if cash is not None:
            try:
                balance = Decimal(cash["balance"])
            except (InvalidOperation, KeyError, TypeError):
                balance = Decimal(0)
        changes.put(
            "cash",
            {
                "account_id": order.account_id,
                "currency": currency,
                "balance": decimal_text(balance - signed * price),
            },
        )

    def _send(self, message: Message, stamp: str) -> None:
        account = self.book.get("accounts", (message.account_id,)) or {}
        contact = account.get("contact") if isinstance(account.get("contact"), dict) else {}
        assert isinstance(contact, dict)
        needs = {"email": "email", "sms": "phone", "voice": "phone"}.get(message.channel)
        if needs is not None and not contact.get(needs):
            message.status = "failed"
            message.failure_reason = f"account {message.account_id} has no {needs} on file"
        else:
            message.status = "sent"
            message.sent_at = stamp


def _crosses(order: Order, price: Decimal) -> bool:
    if order.limit_price is None:
        return True
    if order.side == "sell":
        return price >= order.limit_price
    return price <= order.limit_price


def _lot(instrument: dict[str, Any]) -> Decimal:
    try:
        lot = Decimal(instrument["lot_size"])
    except (InvalidOperation, KeyError, TypeError):
        return Decimal(1)
    return lot if lot > 0 else Decimal(1)


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise Invalid(f"{name} must be a{' non-empty' if required else ''} string")
    if len(value) > MAX_TEXT:
        raise Invalid(f"{name} is longer than {MAX_TEXT} characters")
    return value


def _decimal(value: Any, name: str) -> Decimal:
    if not isinstance(value, str):
        raise Invalid(f'{name} must be a decimal string, e.g. "300"')
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise Invalid(f'{name} must be a decimal string, e.g. "300"') from None
    if not number.is_finite():
        raise Invalid(f"{name} must be a finite number")
    return number

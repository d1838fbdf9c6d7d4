"""What the shop may tell us about an account: validated and normalised on the way in."""

from __future__ import annotations

from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from recovery.accounts.passwords import is_supported_hash
from recovery.identity import normalise
from recovery.identity.normalise import IdentityKind

Locale = Literal["pl", "en"]
#: The shop's own account id.
ExternalId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$")]


class IdentityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: IdentityKind
    value: str = Field(
        min_length=1,
        max_length=320,
        description="email address, phone number (national numbers read as Polish), Google or "
        "Facebook account id, or PayPal payer id; stored normalised",
    )
    verified: bool = Field(False, description="the shop has proof the person controls it")

    @field_validator("value")
    @classmethod
    def _normalise(cls, value: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind is None:  # the kind itself was invalid and is reported on its own
            return value
        try:
            return normalise.identity(kind, value)
        except normalise.InvalidValue as exc:
            raise PydanticCustomError("invalid_identifier", str(exc)) from None


class AccountIn(BaseModel):
    """The body of ``PUT /accounts/{account_id}``."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(None, max_length=200)
    locale: Locale = "pl"
    vip: bool = False
    password_hash: SecretStr | None = Field(
        None,
        description="an argon2 or bcrypt hash from the shop, kept as it is and upgraded to "
        "argon2id on the next use; when absent the stored password is left unchanged",
    )
    identities: list[IdentityIn] = Field(default_factory=list, max_length=50)

    @field_validator("password_hash")
    @classmethod
    def _known_hash(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never repeats the hash: it is a secret even when malformed.
        if value is not None and not is_supported_hash(value.get_secret_value()):
            raise PydanticCustomError("unsupported_hash", "must be an argon2 or bcrypt hash")
        return value


class AccountRecord(AccountIn):
    """One account as the importer and the service see it: the body plus the shop's id."""

    account_id: ExternalId

    def data(self) -> AccountData:
        return AccountData(
            self.account_id,
            self.display_name,
            self.locale,
            self.vip,
            self.password_hash,
            tuple(IdentityData(i.kind, i.value, i.verified) for i in self.identities),
        )


class IdentityData(NamedTuple):
    """A validated ``IdentityIn`` as plain values."""

    kind: IdentityKind
    value: str
    verified: bool


class AccountData(NamedTuple):
    """A validated ``AccountRecord`` as plain values: what ``AccountService.upsert_many`` works on,
    and cheap to send between processes (the importer validates lines in worker processes)."""

    account_id: str
    display_name: str | None
    locale: str
    vip: bool
    password_hash: SecretStr | None
    identities: tuple[IdentityData, ...]

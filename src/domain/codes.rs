//! Validation of the standard codes that the tradewatch API accepts.
//!
//! Every list below is a sorted `static` slice searched with `binary_search`; the
//! tests check that each one is sorted, free of duplicates and of the expected
//! length. Nothing here allocates on the success path, and no input can make a
//! function panic (non-ASCII text, emoji, control characters and overlong
//! strings are all simply refused).
//!
//! # Standards and editions
//!
//! | Function | Standard | Edition / state of the list |
//! |---|---|---|
//! | [`is_iso3166_1_alpha2`] | ISO 3166-1 alpha-2 | The 249 *officially assigned* codes (unchanged since South Sudan, `SS`, was added in 2011). |
//! | [`check_region`] | ISO 3166-1 alpha-2 + ISO 3166-2 | For China, the 34 current ISO 3166-2:CN codes (the letter codes that replaced the numeric ones such as `CN-11` in 2017). Other countries: format only. |
//! | [`is_iso4217`], [`check_unit`] | ISO 4217 | List One ("current currency & funds") as in force from 1 January 2026, i.e. up to and including amendment 180. |
//! | [`is_plain_unit`], [`check_unit`] | none (closed list of our own) | See [`is_plain_unit`]. |
//! | [`ebops2010_title`], [`is_ebops2010`], [`check_ebops2010`] | EBOPS 2010 (UN *Manual on Statistics of International Trade in Services 2010*, Annex I), with the BPM6 codes used in the SDMX balance-of-payments data structure (IMF, OECD, Eurostat) | Services total, the 12 main components, `SN`, and the first level of standard sub-components. |
//!
//! The ISO 3166-1 list, the ISO 3166-2:CN list and the ISO 4217 list (before the
//! amendments noted below) were cross-checked against Debian's `iso-codes`
//! 4.15.0 data.
//!
//! # What is deliberately accepted and refused
//!
//! * **Case.** Codes are case-sensitive and uppercase. Nothing is uppercased
//!   silently: `"cn-cq"` is refused with the reason
//!   [`CodeError::NOT_UPPERCASE`], and the message suggests `"CN-CQ"` when that
//!   form would be accepted. Whether to retry with the uppercase form is the
//!   caller's decision. Surrounding white space is not trimmed either.
//! * **Length.** The empty string and anything longer than [`MAX_CODE_LEN`]
//!   (16) bytes are refused before any other check.
//! * **ISO 3166-1.** Only officially assigned codes. Refused: exceptionally
//!   reserved codes (`UK`, `EU`, `EL`, ...), transitionally reserved codes
//!   (`AN`, `YU`, ...), and user-assigned codes, including `XK`, which is widely
//!   used for Kosovo but is not part of the standard. Both `HK`, `MO` and `TW`
//!   and their ISO 3166-2:CN forms `CN-HK`, `CN-MO` and `CN-TW` are accepted,
//!   as both are in the standards.
//! * **ISO 3166-2.** The full standard has about 5,000 subdivision codes across
//!   some 200 countries and changes several times a year, so carrying it here
//!   would mean a large list that is stale most of the time. Only China, whose
//!   subdivisions are central to our data, is checked against the list; for
//!   every other country `CC-SSS` is checked for format (a valid alpha-2 country,
//!   a hyphen, then 1–3 uppercase ASCII letters or digits, which covers every
//!   code the standard currently assigns) and is otherwise accepted as is.
//! * **ISO 4217.** All of List One, including the fund codes (`BOV`, `CHE`,
//!   `CHW`, `CLF`, `COU`, `MXV`, `USN`, `UYI`, `UYW`), the precious metals
//!   (`XAU`, `XAG`, `XPT`, `XPD`), the SDR (`XDR`), the supranational
//!   currencies (`XOF`, `XAF`, `XPF`, `XCD`, `XCG`, `XSU`), the bond-market
//!   units (`XBA`–`XBD`), `XUA` and the Arab Accounting Dinar `XAD`. Refused:
//!   `XTS` (reserved for testing) and `XXX` (no currency), which are not
//!   currencies, and every historic code of List Three, recently withdrawn ones
//!   included: `BGN` (Bulgaria joined the euro on 1 January 2026), `ANG`
//!   (replaced by `XCG` in 2025), `ZWL` (replaced by `ZWG` in 2024), `CUC`,
//!   `HRK` and `SLL`. Amounts in a withdrawn currency must be converted first.
//! * **Units.** A unit is a currency or one of a short list of plain units.
//!   A value of exactly three uppercase letters is read as a currency code
//!   unless it is one of the plain units (`TEU`, `KWH`), so a typo such as
//!   `"UDS"` is refused with [`CodeError::UNKNOWN_CURRENCY`] instead of being
//!   taken for some unknown plain unit.
//! * **EBOPS 2010.** Only the services total, the main components and their
//!   first-level sub-components (see [`is_ebops2010`]). Deeper items (`SC11`,
//!   `SJ21`, ...), the alternative breakdowns (`SCA`–`SCC` by type of transport,
//!   `SC3A`–`SC3G` by other mode, `SD1`–`SD5` travel by product), memorandum
//!   and supplementary items (`SAY`, `SAZ`, ...) are refused. Note that
//!   business and personal travel are `SDA` and `SDB`: `SD1`–`SD5` are a
//!   different breakdown of travel (goods, local transport, accommodation, ...)
//!   and are refused so that a mislabelled series fails loudly.

use std::error::Error;
use std::fmt;

/// Longest input, in bytes, that any check in this module accepts; longer
/// inputs are refused with [`CodeError::TOO_LONG`] before any other check.
///
/// The longest accepted code is `ENTERPRISE` (10 bytes), so 16 leaves room
/// for growth without letting arbitrarily large input reach the checks or the
/// error messages.
pub const MAX_CODE_LEN: usize = 16;

/// Why a code was refused.
///
/// `reason` is a stable machine-readable tag (one of the associated constants,
/// such as [`CodeError::UNKNOWN_CURRENCY`]); `message` is a sentence for
/// people that names the offending value (quoted and escaped, cut after
/// [`MAX_CODE_LEN`] bytes) and says what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeError {
    /// Machine-readable cause, in SCREAMING_SNAKE_CASE; one of the associated
    /// constants of [`CodeError`].
    pub reason: &'static str,
    /// Human-readable sentence naming the bad value and what is expected.
    pub message: String,
}

impl CodeError {
    /// The input was the empty string.
    pub const EMPTY: &'static str = "EMPTY";
    /// The input was longer than [`MAX_CODE_LEN`] bytes.
    pub const TOO_LONG: &'static str = "TOO_LONG";
    /// The input contained ASCII lowercase letters. Codes are uppercase; the
    /// message suggests the uppercase form if that form would be accepted.
    pub const NOT_UPPERCASE: &'static str = "NOT_UPPERCASE";
    /// The input does not have the shape of a region code (`CC` or `CC-SSS`).
    pub const INVALID_FORMAT: &'static str = "INVALID_FORMAT";
    /// Two uppercase letters that are not an officially assigned ISO 3166-1
    /// alpha-2 code.
    pub const UNKNOWN_COUNTRY: &'static str = "UNKNOWN_COUNTRY";
    /// A well-formed subdivision code that is not in the ISO 3166-2 list this
    /// module checks (currently only ISO 3166-2:CN).
    pub const UNKNOWN_SUBDIVISION: &'static str = "UNKNOWN_SUBDIVISION";
    /// Three uppercase letters that are neither an ISO 4217 List One code nor
    /// a plain unit.
    pub const UNKNOWN_CURRENCY: &'static str = "UNKNOWN_CURRENCY";
    /// Any other unit that is neither a currency nor a plain unit.
    pub const UNKNOWN_UNIT: &'static str = "UNKNOWN_UNIT";
    /// A code that is not one of the accepted EBOPS 2010 service codes.
    pub const UNKNOWN_SERVICE_CATEGORY: &'static str = "UNKNOWN_SERVICE_CATEGORY";

    fn new(reason: &'static str, message: String) -> Self {
        CodeError { reason, message }
    }
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error for CodeError {}

/// What kind of region [`check_region`] accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegionKind {
    /// An ISO 3166-1 alpha-2 country code, such as `CN`.
    Country,
    /// An ISO 3166-2 subdivision code, such as `CN-GD` or `US-CA`.
    Subdivision,
}

/// What kind of unit [`check_unit`] accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitKind {
    /// An ISO 4217 currency (or fund or precious metal) code, such as `USD`.
    Currency,
    /// One of the plain units listed at [`is_plain_unit`], such as `TEU`.
    Plain,
    /// An exchange rate: units of one currency per unit of another, `CNY/USD`.
    ExchangeRate,
}

/// The two currencies of an exchange-rate unit `PRICE/BASE` (units of `PRICE` per
/// unit of `BASE`, such as `CNY/USD`): both ISO 4217 codes, and different.
pub fn currency_pair(code: &str) -> Option<(&str, &str)> {
    let (price, base) = code.split_once('/')?;
    (is_iso4217(price) && is_iso4217(base) && price != base).then_some((price, base))
}

// ---------------------------------------------------------------------------
// Lists
// ---------------------------------------------------------------------------

/// ISO 3166-1 alpha-2, officially assigned codes (249).
static ISO3166_1_ALPHA2: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// ISO 3166-2:CN, current codes (34): 23 provinces (incl. `CN-TW` as listed by
/// the standard), 4 municipalities, 5 autonomous regions, 2 SARs.
static ISO3166_2_CN: &[&str] = &[
    "CN-AH", // Anhui
    "CN-BJ", // Beijing
    "CN-CQ", // Chongqing
    "CN-FJ", // Fujian
    "CN-GD", // Guangdong
    "CN-GS", // Gansu
    "CN-GX", // Guangxi Zhuangzu Zizhiqu
    "CN-GZ", // Guizhou
    "CN-HA", // Henan
    "CN-HB", // Hubei
    "CN-HE", // Hebei
    "CN-HI", // Hainan
    "CN-HK", // Hong Kong SAR
    "CN-HL", // Heilongjiang
    "CN-HN", // Hunan
    "CN-JL", // Jilin
    "CN-JS", // Jiangsu
    "CN-JX", // Jiangxi
    "CN-LN", // Liaoning
    "CN-MO", // Macao SAR
    "CN-NM", // Nei Mongol Zizhiqu
    "CN-NX", // Ningxia Huizu Zizhiqu
    "CN-QH", // Qinghai
    "CN-SC", // Sichuan
    "CN-SD", // Shandong
    "CN-SH", // Shanghai
    "CN-SN", // Shaanxi
    "CN-SX", // Shanxi
    "CN-TJ", // Tianjin
    "CN-TW", // Taiwan
    "CN-XJ", // Xinjiang Uygur Zizhiqu
    "CN-XZ", // Xizang Zizhiqu
    "CN-YN", // Yunnan
    "CN-ZJ", // Zhejiang
];

/// ISO 4217 List One alphabetic codes in force from 2026-01-01 (amendment
/// 180), without `XTS` and `XXX` (176).
static ISO4217: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", //
    "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", //
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", //
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", //
    "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", //
    "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", //
    "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", //
    "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", //
    "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", //
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", //
    "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", //
    "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", //
    "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAD", //
    "XAF", "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", //
    "XPF", "XPT", "XSU", "XUA", "YER", "ZAR", "ZMW", "ZWG", //
];

/// Plain units (11), sorted by byte value. See [`is_plain_unit`].
#[rustfmt::skip]
static PLAIN_UNITS: &[&str] = &[
    "%", "1", "ENTERPRISE", "HOUR", "KG", "KWH", "M2", "PERSON", "PROJECT", "T", "TEU",
];

/// EBOPS 2010 codes (BPM6 / SDMX spelling) with their EBOPS 2010 titles (43).
/// The comments give the EBOPS 2010 item numbers.
#[rustfmt::skip]
static EBOPS2010: &[(&str, &str)] = &[
    ("S", "Services"),
    // 1, 2
    ("SA", "Manufacturing services on physical inputs owned by others"),
    ("SB", "Maintenance and repair services n.i.e."),
    // 3, 3.1 to 3.4
    ("SC", "Transport"),
    ("SC1", "Sea transport"),
    ("SC2", "Air transport"),
    ("SC3", "Other modes of transport"),
    ("SC4", "Postal and courier services"),
    // 4, 4.1, 4.2
    ("SD", "Travel"),
    ("SDA", "Business travel"),
    ("SDB", "Personal travel"),
    // 5, 5.1, 5.2
    ("SE", "Construction"),
    ("SE1", "Construction abroad"),
    ("SE2", "Construction in the reporting economy"),
    // 6, 6.1 to 6.4
    ("SF", "Insurance and pension services"),
    ("SF1", "Direct insurance"),
    ("SF2", "Reinsurance"),
    ("SF3", "Auxiliary insurance services"),
    ("SF4", "Pension and standardized guarantee services"),
    // 7, 7.1, 7.2
    ("SG", "Financial services"),
    ("SG1", "Financial services explicitly charged and other financial services"),
    ("SG2", "Financial intermediation services indirectly measured (FISIM)"),
    // 8, 8.1 to 8.4
    ("SH", "Charges for the use of intellectual property n.i.e."),
    ("SH1", "Franchises and trademarks licensing fees"),
    ("SH2", "Licences for the use of outcomes of research and development"),
    ("SH3", "Licences to reproduce and/or distribute computer software"),
    ("SH4", "Licences to reproduce and/or distribute audiovisual and related products"),
    // 9, 9.1 to 9.3
    ("SI", "Telecommunications, computer, and information services"),
    ("SI1", "Telecommunications services"),
    ("SI2", "Computer services"),
    ("SI3", "Information services"),
    // 10, 10.1 to 10.3
    ("SJ", "Other business services"),
    ("SJ1", "Research and development services"),
    ("SJ2", "Professional and management consulting services"),
    ("SJ3", "Technical, trade-related, and other business services"),
    // 11, 11.1, 11.2
    ("SK", "Personal, cultural, and recreational services"),
    ("SK1", "Audiovisual and related services"),
    ("SK2", "Other personal, cultural, and recreational services"),
    // 12, 12.1 to 12.3
    ("SL", "Government goods and services n.i.e."),
    ("SL1", "Embassies and consulates"),
    ("SL2", "Military units and agencies"),
    ("SL3", "Other government goods and services n.i.e."),
    // Not an EBOPS 2010 item: BPM6 / SDMX balance-of-payments code.
    ("SN", "Services not allocated"),
];

// ---------------------------------------------------------------------------
// Public checks
// ---------------------------------------------------------------------------

/// Whether `code` is an officially assigned ISO 3166-1 alpha-2 country code
/// (all 249 of them, such as `"CN"`, `"GB"`, `"HK"`).
///
/// Case-sensitive: `"cn"` is `false`. Reserved codes (`"UK"`, `"EU"`, `"EL"`)
/// and user-assigned codes, including `"XK"` for Kosovo, are `false`.
pub fn is_iso3166_1_alpha2(code: &str) -> bool {
    ISO3166_1_ALPHA2.binary_search(&code).is_ok()
}

/// Checks a region code as the API accepts it: either an ISO 3166-1 alpha-2
/// country code (`"CN"`) or an ISO 3166-2 subdivision code `"CC-SSS"`, where
/// `CC` is a valid alpha-2 country and `SSS` is 1–3 uppercase ASCII letters or
/// digits.
///
/// For China the subdivision must be one of the 34 current ISO 3166-2:CN codes
/// (`"CN-CQ"` is accepted, `"CN-XX"` and the pre-2017 numeric `"CN-50"` are
/// not). For every other country only the format is checked (`"US-CA"` is
/// accepted, and so would be `"US-ZZ"`): the full ISO 3166-2 list has about
/// 5,000 codes and changes several times a year.
///
/// # Errors
///
/// [`CodeError::EMPTY`], [`CodeError::TOO_LONG`], [`CodeError::NOT_UPPERCASE`],
/// [`CodeError::INVALID_FORMAT`], [`CodeError::UNKNOWN_COUNTRY`] or
/// [`CodeError::UNKNOWN_SUBDIVISION`].
pub fn check_region(code: &str) -> Result<RegionKind, CodeError> {
    check_with_case_hint(code, check_region_exact)
}

/// Whether `code` is an alphabetic code of ISO 4217 List One as in force from
/// 1 January 2026 (amendment 180): the currencies, the fund codes (`"BOV"`,
/// `"CLF"`, `"USN"`, ...) and the `X` codes such as `"XDR"`, `"XAU"`, `"XAG"`,
/// `"XPT"`, `"XPD"`, `"XOF"`, `"XAF"`, `"XPF"`, `"XCD"` and `"XCG"`.
///
/// `false` for `"XTS"` (testing) and `"XXX"` (no currency), which are not
/// currencies, and for withdrawn codes such as `"BGN"`, `"ANG"`, `"HRK"`,
/// `"CUC"`, `"SLL"` and `"ZWL"`. Case-sensitive.
pub fn is_iso4217(code: &str) -> bool {
    ISO4217.binary_search(&code).is_ok()
}

/// Whether `code` is one of the plain (non-currency) units accepted for
/// indicators. The list is closed on purpose; each entry is there because
/// indicators of service-trade programmes need it:
///
/// | Unit | Meaning | Used for |
/// |---|---|---|
/// | `1` | a count or pure number | numbers of agreements, measures, indices |
/// | `%` | percent | shares, growth rates, utilisation |
/// | `TEU` | twenty-foot equivalent units | container throughput (transport services) |
/// | `T` | metric tonnes | freight volumes |
/// | `KG` | kilograms | air freight, postal and courier volumes |
/// | `PERSON` | people | trainees, visitors, workers, experts |
/// | `ENTERPRISE` | enterprises | firms supported, registered or certified |
/// | `PROJECT` | projects | projects funded or completed |
/// | `M2` | square metres | exhibition, office or warehouse floor space |
/// | `HOUR` | hours | training or service hours |
/// | `KWH` | kilowatt-hours | electricity transmission services |
///
/// Case-sensitive: `"kg"` is `false`. Adding a unit is a deliberate change
/// here; a three-letter unit must not clash with an ISO 4217 code.
pub fn is_plain_unit(code: &str) -> bool {
    PLAIN_UNITS.binary_search(&code).is_ok()
}

/// Checks a unit: an ISO 4217 currency code (see [`is_iso4217`]) or a plain
/// unit (see [`is_plain_unit`]).
///
/// Exactly three uppercase ASCII letters are taken to be a currency code
/// unless they are a plain unit (`"TEU"`, `"KWH"`), so a typo such as `"UDS"`
/// is refused as an unknown currency rather than accepted as a plain unit.
///
/// # Errors
///
/// [`CodeError::EMPTY`], [`CodeError::TOO_LONG`], [`CodeError::NOT_UPPERCASE`],
/// [`CodeError::UNKNOWN_CURRENCY`] (three uppercase letters) or
/// [`CodeError::UNKNOWN_UNIT`] (anything else).
pub fn check_unit(code: &str) -> Result<UnitKind, CodeError> {
    check_with_case_hint(code, check_unit_exact)
}

/// The EBOPS 2010 title of an accepted service code, such as
/// `"SC"` → `"Transport"`, or `None` if the code is not accepted
/// (see [`is_ebops2010`]). Case-sensitive.
pub fn ebops2010_title(code: &str) -> Option<&'static str> {
    EBOPS2010
        .binary_search_by(|(c, _)| (*c).cmp(code))
        .ok()
        .map(|i| EBOPS2010[i].1)
}

/// Whether `code` is an accepted EBOPS 2010 service code, in the BPM6 / SDMX
/// spelling:
///
/// * `S`, all services;
/// * the 12 main components `SA` to `SL`, and `SN`, services not allocated
///   (an SDMX balance-of-payments code, not an EBOPS 2010 item);
/// * their standard first-level sub-components: `SC1`–`SC4` (sea, air, other
///   modes, postal and courier), `SDA`/`SDB` (business, personal travel),
///   `SE1`/`SE2`, `SF1`–`SF4`, `SG1`/`SG2`, `SH1`–`SH4`, `SI1`–`SI3`,
///   `SJ1`–`SJ3`, `SK1`/`SK2` and `SL1`–`SL3`. `SA` and `SB` have none.
///
/// Anything else is `false`: `"SM"`, `"SZ"`, deeper items such as `"SC11"`,
/// and the alternative travel breakdown `"SD1"`–`"SD5"` (which is by product,
/// not business/personal). Case-sensitive.
pub fn is_ebops2010(code: &str) -> bool {
    ebops2010_title(code).is_some()
}

/// Checks an EBOPS 2010 service code (see [`is_ebops2010`]) and returns its
/// title, with the same error conventions as [`check_region`] and
/// [`check_unit`].
///
/// # Errors
///
/// [`CodeError::EMPTY`], [`CodeError::TOO_LONG`], [`CodeError::NOT_UPPERCASE`]
/// or [`CodeError::UNKNOWN_SERVICE_CATEGORY`].
pub fn check_ebops2010(code: &str) -> Result<&'static str, CodeError> {
    check_with_case_hint(code, check_ebops2010_exact)
}

// ---------------------------------------------------------------------------
// Internals
// ---------------------------------------------------------------------------

/// `code` quoted and escaped for a message, cut after [`MAX_CODE_LEN`] bytes
/// (on a character boundary) so that huge input cannot bloat the message.
fn quoted(code: &str) -> String {
    if code.len() <= MAX_CODE_LEN {
        return format!("{code:?}");
    }
    let mut end = MAX_CODE_LEN;
    while !code.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &code[..end])
}

/// Refuses empty and overlong input, refuses input with ASCII lowercase
/// letters (suggesting the uppercase form when `check` would accept it), and
/// otherwise runs `check`.
fn check_with_case_hint<T>(
    code: &str,
    check: fn(&str) -> Result<T, CodeError>,
) -> Result<T, CodeError> {
    if code.is_empty() {
        return Err(CodeError::new(
            CodeError::EMPTY,
            "the code is empty; a non-empty uppercase code is expected".to_string(),
        ));
    }
    if code.len() > MAX_CODE_LEN {
        return Err(CodeError::new(
            CodeError::TOO_LONG,
            format!(
                "{} is {} bytes long; codes are at most {MAX_CODE_LEN} bytes",
                quoted(code),
                code.len()
            ),
        ));
    }
    if code.bytes().any(|b| b.is_ascii_lowercase()) {
        let upper = code.to_ascii_uppercase();
        let message = match check(&upper) {
            Ok(_) => format!(
                "{} is not uppercase (codes are case-sensitive); did you mean {upper:?}?",
                quoted(code)
            ),
            Err(e) => format!(
                "{} is not uppercase (codes are case-sensitive), and {upper:?} is not accepted either: {}",
                quoted(code),
                e.message
            ),
        };
        return Err(CodeError::new(CodeError::NOT_UPPERCASE, message));
    }
    check(code)
}

fn is_upper_alpha(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_uppercase)
}

/// Extra advice for common non-ISO country codes.
fn country_hint(cc: &str) -> &'static str {
    match cc {
        "UK" => " (use \"GB\" for the United Kingdom)",
        "EL" => " (use \"GR\" for Greece)",
        "EU" => " (\"EU\" is reserved for the European Union, which is not a country)",
        "XK" => {
            " (\"XK\" for Kosovo is user-assigned, not part of ISO 3166-1, and is not accepted)"
        }
        _ => "",
    }
}

fn check_region_exact(code: &str) -> Result<RegionKind, CodeError> {
    let b = code.as_bytes();
    let well_formed = match b.len() {
        2 => is_upper_alpha(b),
        4..=6 => {
            is_upper_alpha(&b[..2])
                && b[2] == b'-'
                && b[3..]
                    .iter()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        }
        _ => false,
    };
    if !well_formed {
        return Err(CodeError::new(
            CodeError::INVALID_FORMAT,
            format!(
                "{} is not a region code: expected an ISO 3166-1 alpha-2 country code such as \"CN\" \
                 or an ISO 3166-2 subdivision code such as \"CN-GD\" (country, hyphen, \
                 1 to 3 uppercase letters or digits)",
                quoted(code)
            ),
        ));
    }
    // Well-formed implies ASCII, so slicing at byte 2 is on a char boundary.
    let country = &code[..2];
    if !is_iso3166_1_alpha2(country) {
        let subject = if b.len() == 2 {
            quoted(code)
        } else {
            format!("in {}, {}", quoted(code), quoted(country))
        };
        return Err(CodeError::new(
            CodeError::UNKNOWN_COUNTRY,
            format!(
                "{subject} is not an officially assigned ISO 3166-1 alpha-2 country code{}",
                country_hint(country)
            ),
        ));
    }
    if b.len() == 2 {
        return Ok(RegionKind::Country);
    }
    if country == "CN" && ISO3166_2_CN.binary_search(&code).is_err() {
        return Err(CodeError::new(
            CodeError::UNKNOWN_SUBDIVISION,
            format!(
                "{} is not a current ISO 3166-2:CN subdivision code; expected one of the 34 \
                 provincial-level codes such as \"CN-BJ\", \"CN-GD\" or \"CN-SC\" \
                 (the numeric codes such as \"CN-11\" were replaced in 2017)",
                quoted(code)
            ),
        ));
    }
    Ok(RegionKind::Subdivision)
}

fn check_unit_exact(code: &str) -> Result<UnitKind, CodeError> {
    if is_iso4217(code) {
        return Ok(UnitKind::Currency);
    }
    if is_plain_unit(code) {
        return Ok(UnitKind::Plain);
    }
    if currency_pair(code).is_some() {
        return Ok(UnitKind::ExchangeRate);
    }
    let expected = format!(
        "an ISO 4217 currency code or a known plain unit ({})",
        PLAIN_UNITS.join(", ")
    );
    let b = code.as_bytes();
    if b.len() == 3 && is_upper_alpha(b) {
        let note = match code {
            "XTS" | "XXX" => "; XTS and XXX are reserved ISO 4217 codes, not currencies",
            _ => {
                "; three uppercase letters are read as a currency code, and withdrawn codes are not accepted"
            }
        };
        return Err(CodeError::new(
            CodeError::UNKNOWN_CURRENCY,
            format!("{} is not {expected}{note}", quoted(code)),
        ));
    }
    Err(CodeError::new(
        CodeError::UNKNOWN_UNIT,
        format!("{} is not {expected}", quoted(code)),
    ))
}

fn check_ebops2010_exact(code: &str) -> Result<&'static str, CodeError> {
    if let Some(title) = ebops2010_title(code) {
        return Ok(title);
    }
    let note = match code {
        "SD1" | "SD2" | "SD3" | "SD4" | "SD5" => {
            "; business and personal travel are \"SDA\" and \"SDB\" (SD1 to SD5 are the \
             breakdown of travel by product, which is not accepted)"
        }
        _ => "",
    };
    Err(CodeError::new(
        CodeError::UNKNOWN_SERVICE_CATEGORY,
        format!(
            "{} is not an accepted EBOPS 2010 service code: expected \"S\", a main component \
             \"SA\" to \"SL\" or \"SN\", or a first-level sub-component such as \"SC1\" or \"SJ2\"{note}",
            quoted(code)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strictly_sorted(list: &[&str]) -> bool {
        list.windows(2).all(|w| w[0] < w[1])
    }

    #[test]
    fn lists_are_sorted_without_duplicates() {
        assert!(strictly_sorted(ISO3166_1_ALPHA2));
        assert!(strictly_sorted(ISO3166_2_CN));
        assert!(strictly_sorted(ISO4217));
        assert!(strictly_sorted(PLAIN_UNITS));
        let ebops: Vec<&str> = EBOPS2010.iter().map(|(c, _)| *c).collect();
        assert!(strictly_sorted(&ebops));
    }

    #[test]
    fn list_lengths() {
        assert_eq!(ISO3166_1_ALPHA2.len(), 249);
        assert_eq!(ISO3166_2_CN.len(), 34);
        assert_eq!(ISO4217.len(), 176);
        assert_eq!(PLAIN_UNITS.len(), 11);
        // S + 12 main components + SN + 29 sub-components.
        assert_eq!(EBOPS2010.len(), 43);
    }

    #[test]
    fn list_entries_are_well_formed() {
        for c in ISO3166_1_ALPHA2 {
            assert!(c.len() == 2 && is_upper_alpha(c.as_bytes()), "{c}");
        }
        for c in ISO4217 {
            assert!(c.len() == 3 && is_upper_alpha(c.as_bytes()), "{c}");
        }
        for c in ISO3166_2_CN {
            assert_eq!(check_region(c), Ok(RegionKind::Subdivision), "{c}");
            assert!(c.starts_with("CN-") && c.len() == 5, "{c}");
        }
        for c in PLAIN_UNITS {
            assert!(!is_iso4217(c), "plain unit {c} clashes with ISO 4217");
            assert!(c.len() <= MAX_CODE_LEN);
            assert_eq!(check_unit(c), Ok(UnitKind::Plain), "{c}");
        }
        for c in ISO4217 {
            assert_eq!(check_unit(c), Ok(UnitKind::Currency), "{c}");
        }
        for (code, title) in EBOPS2010 {
            assert!(!title.is_empty());
            assert_eq!(check_ebops2010(code), Ok(*title));
            // Every sub-component's main component is in the list.
            if code.len() == 3 {
                assert!(is_ebops2010(&code[..2]), "{code} has no parent");
            }
        }
    }

    #[test]
    fn countries() {
        for ok in [
            "CN", "US", "GB", "HK", "MO", "TW", "SS", "CW", "SX", "BQ", "AX",
        ] {
            assert!(is_iso3166_1_alpha2(ok), "{ok}");
            assert_eq!(check_region(ok), Ok(RegionKind::Country), "{ok}");
        }
        for bad in [
            "ZZ", "UK", "EU", "EL", "XK", "AN", "YU", "cn", "C", "CHN", "",
        ] {
            assert!(!is_iso3166_1_alpha2(bad), "{bad}");
        }
        let e = check_region("ZZ").unwrap_err();
        assert_eq!(e.reason, CodeError::UNKNOWN_COUNTRY);
        assert!(e.message.contains("\"ZZ\""), "{}", e.message);
        let e = check_region("UK").unwrap_err();
        assert_eq!(e.reason, CodeError::UNKNOWN_COUNTRY);
        assert!(e.message.contains("\"GB\""), "{}", e.message);
        assert_eq!(
            check_region("XK").unwrap_err().reason,
            CodeError::UNKNOWN_COUNTRY
        );
    }

    #[test]
    fn subdivisions() {
        assert_eq!(check_region("CN-CQ"), Ok(RegionKind::Subdivision));
        assert_eq!(check_region("CN-HK"), Ok(RegionKind::Subdivision));
        assert_eq!(check_region("US-CA"), Ok(RegionKind::Subdivision));
        assert_eq!(check_region("FR-75C"), Ok(RegionKind::Subdivision));
        assert_eq!(check_region("GB-ENG"), Ok(RegionKind::Subdivision));
        assert_eq!(check_region("DE-1"), Ok(RegionKind::Subdivision));

        for bad in ["CN-XX", "CN-11", "CN-50", "CN-A", "CN-ABC"] {
            let e = check_region(bad).unwrap_err();
            assert_eq!(e.reason, CodeError::UNKNOWN_SUBDIVISION, "{bad}");
            assert!(e.message.contains(&format!("{bad:?}")), "{}", e.message);
        }
        let e = check_region("ZZ-AB").unwrap_err();
        assert_eq!(e.reason, CodeError::UNKNOWN_COUNTRY);
        assert!(e.message.contains("\"ZZ-AB\"") && e.message.contains("\"ZZ\""));

        for bad in [
            "CN-", "CN-ABCD", "CN_GD", "CNGD", "C-GD", "CN--G", "CN-G-", "-CN", " CN", "CN ",
            "CN-G D", "CN-é", "ÇN", "C1", "12", "CN-+",
        ] {
            assert_eq!(
                check_region(bad).unwrap_err().reason,
                CodeError::INVALID_FORMAT,
                "{bad:?}"
            );
        }
    }

    #[test]
    fn lowercase_is_refused_with_suggestion() {
        let e = check_region("cn-cq").unwrap_err();
        assert_eq!(e.reason, CodeError::NOT_UPPERCASE);
        assert!(e.message.contains("\"cn-cq\""), "{}", e.message);
        assert!(
            e.message.contains("did you mean \"CN-CQ\"?"),
            "{}",
            e.message
        );

        let e = check_region("Cn").unwrap_err();
        assert_eq!(e.reason, CodeError::NOT_UPPERCASE);
        assert!(e.message.contains("did you mean \"CN\"?"));

        // No suggestion when the uppercase form is refused too.
        let e = check_region("cn-xx").unwrap_err();
        assert_eq!(e.reason, CodeError::NOT_UPPERCASE);
        assert!(!e.message.contains("did you mean"), "{}", e.message);
        assert!(e.message.contains("\"CN-XX\" is not accepted either"));

        let e = check_unit("usd").unwrap_err();
        assert_eq!(e.reason, CodeError::NOT_UPPERCASE);
        assert!(e.message.contains("did you mean \"USD\"?"));
        let e = check_unit("kg").unwrap_err();
        assert!(e.message.contains("did you mean \"KG\"?"));
        let e = check_unit("uds").unwrap_err();
        assert_eq!(e.reason, CodeError::NOT_UPPERCASE);
        assert!(!e.message.contains("did you mean"));

        let e = check_ebops2010("sc1").unwrap_err();
        assert_eq!(e.reason, CodeError::NOT_UPPERCASE);
        assert!(e.message.contains("did you mean \"SC1\"?"));

        assert!(!is_iso4217("usd"));
        assert!(!is_plain_unit("kwh"));
        assert!(!is_ebops2010("sa"));
        assert_eq!(ebops2010_title("sc"), None);
    }

    #[test]
    fn currencies() {
        for ok in [
            "USD", "CNY", "EUR", "GBP", "JPY", "HKD", "MOP", "TWD", "XDR", "XAU", "XAG", "XPT",
            "XPD", "XOF", "XAF", "XPF", "XCD", "XCG", "ZWG", "XAD", "SLE", "VED", "VES", "UYW",
            "CHE", "CHW", "BOV", "CLF", "COU", "MXV", "USN", "UYI", "XSU", "XUA", "XBA", "XBD",
        ] {
            assert!(is_iso4217(ok), "{ok}");
            assert_eq!(check_unit(ok), Ok(UnitKind::Currency), "{ok}");
        }
        for bad in [
            "XTS", "XXX", "BGN", "ANG", "ZWL", "CUC", "HRK", "SLL", "DEM", "FRF", "VEF", "MRO",
            "STD", "BYR", "LTL", "LVL", "UDS", "RMB",
        ] {
            assert!(!is_iso4217(bad), "{bad}");
            let e = check_unit(bad).unwrap_err();
            assert_eq!(e.reason, CodeError::UNKNOWN_CURRENCY, "{bad}");
        }
        let e = check_unit("UDS").unwrap_err();
        assert!(
            e.message.starts_with(
                "\"UDS\" is not an ISO 4217 currency code or a known plain unit (%, 1, ENTERPRISE"
            ),
            "{}",
            e.message
        );
        assert!(e.message.contains("TEU"));
    }

    #[test]
    fn plain_units() {
        for ok in [
            "1",
            "%",
            "TEU",
            "T",
            "KG",
            "KWH",
            "M2",
            "PERSON",
            "ENTERPRISE",
            "PROJECT",
            "HOUR",
        ] {
            assert!(is_plain_unit(ok), "{ok}");
            assert_eq!(check_unit(ok), Ok(UnitKind::Plain), "{ok}");
        }
        for bad in [
            "2", "PCT", "PERCENT", "TONNE", "KM", "M3", "PERSONS", "%%", " 1", "1 ",
        ] {
            assert!(!is_plain_unit(bad), "{bad}");
            assert!(check_unit(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_unit("PCT").unwrap_err().reason,
            CodeError::UNKNOWN_CURRENCY
        );
        assert_eq!(
            check_unit("TONNE").unwrap_err().reason,
            CodeError::UNKNOWN_UNIT
        );
        assert_eq!(
            check_unit("M3").unwrap_err().reason,
            CodeError::UNKNOWN_UNIT
        );
        assert_eq!(check_unit("€").unwrap_err().reason, CodeError::UNKNOWN_UNIT);
    }

    #[test]
    fn ebops() {
        for ok in [
            "S", "SA", "SB", "SL", "SN", "SC1", "SC4", "SDA", "SDB", "SI2", "SJ3", "SL3",
        ] {
            assert!(is_ebops2010(ok), "{ok}");
        }
        assert_eq!(ebops2010_title("SC"), Some("Transport"));
        assert_eq!(ebops2010_title("S"), Some("Services"));
        assert_eq!(ebops2010_title("SI2"), Some("Computer services"));
        assert_eq!(ebops2010_title("SN"), Some("Services not allocated"));
        for bad in [
            "SM", "SZ", "SO", "SC5", "SC11", "SA1", "SB1", "SAY", "SCA", "SC3A", "SD1", "SD5",
            "SE3", "SF5", "SG3", "SH5", "SI4", "SJ4", "SK3", "SL4", "SN1", "", "s",
        ] {
            assert!(!is_ebops2010(bad), "{bad}");
            assert_eq!(ebops2010_title(bad), None, "{bad}");
        }
        let e = check_ebops2010("SM").unwrap_err();
        assert_eq!(e.reason, CodeError::UNKNOWN_SERVICE_CATEGORY);
        assert!(e.message.contains("\"SM\""));
        let e = check_ebops2010("SD1").unwrap_err();
        assert!(e.message.contains("\"SDA\""), "{}", e.message);
    }

    #[test]
    fn empty_and_overlong() {
        for f in [
            |c: &str| check_region(c).err(),
            |c: &str| check_unit(c).err(),
            |c: &str| check_ebops2010(c).err(),
        ] {
            assert_eq!(f("").unwrap().reason, CodeError::EMPTY);
            let seventeen = "A".repeat(MAX_CODE_LEN + 1);
            let e = f(&seventeen).unwrap();
            assert_eq!(e.reason, CodeError::TOO_LONG);
            assert!(e.message.contains("17 bytes"), "{}", e.message);
            // Exactly the limit goes on to the real check.
            assert_ne!(
                f(&"A".repeat(MAX_CODE_LEN)).unwrap().reason,
                CodeError::TOO_LONG
            );
            // Overlong multibyte input is cut on a character boundary.
            let long = "é🦀".repeat(1000);
            let e = f(&long).unwrap();
            assert_eq!(e.reason, CodeError::TOO_LONG);
            assert!(e.message.len() < 100, "{}", e.message);
        }
        assert!(!is_iso3166_1_alpha2(&"A".repeat(10_000)));
    }

    #[test]
    fn never_panics() {
        let pieces = [
            "",
            "A",
            "a",
            "C",
            "N",
            "-",
            "1",
            "%",
            "é",
            "🦀",
            "\0",
            "\n",
            " ",
            "\u{200b}",
            "Ω",
            "\u{10ffff}",
            "ß",
            "İ",
            "CN",
            "US",
            "cn",
            "-GD",
            "SC",
            "USD",
        ];
        let mut n = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let s = format!("{a}{b}{c}");
                    let _ = check_region(&s);
                    let _ = check_unit(&s);
                    let _ = check_ebops2010(&s);
                    let _ = is_iso3166_1_alpha2(&s);
                    let _ = is_iso4217(&s);
                    let _ = is_plain_unit(&s);
                    let _ = ebops2010_title(&s);
                    let errors = [
                        check_region(&s).err(),
                        check_unit(&s).err(),
                        check_ebops2010(&s).err(),
                    ];
                    for e in errors.into_iter().flatten() {
                        assert!(!e.message.is_empty());
                        assert_eq!(e.to_string(), e.message);
                    }
                    n += 1;
                }
            }
        }
        assert_eq!(n, pieces.len().pow(3));
        // Control characters are escaped in messages.
        let e = check_unit("A\nB").unwrap_err();
        assert!(e.message.contains("\"A\\nB\""), "{}", e.message);
    }

    #[test]
    fn exchange_rate_units_are_pairs_of_two_currencies() {
        assert_eq!(check_unit("CNY/USD"), Ok(UnitKind::ExchangeRate));
        assert_eq!(currency_pair("CNY/USD"), Some(("CNY", "USD")));
        for bad in [
            "CNY/CNY",
            "CNY/",
            "/USD",
            "CNY/XYZ",
            "CNY/USD/EUR",
            "cny/usd",
            "%/USD",
        ] {
            assert_eq!(currency_pair(bad), None, "{bad}");
            assert!(check_unit(bad).is_err(), "{bad}");
        }
    }
}

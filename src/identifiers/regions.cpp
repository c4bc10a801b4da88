#include "identifiers/regions.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "core/per_thread.hpp"
#include "identifiers/text.hpp"

namespace activation::identifiers {
namespace {

struct Country {
  const char* alpha2;
  const char* alpha3;
  const char* name;  // The ISO 3166-1 English short name.
};

// The 249 entries of ISO 3166-1.
constexpr Country kCountries[] = {
    {"AD", "AND", "Andorra"},
    {"AE", "ARE", "United Arab Emirates"},
    {"AF", "AFG", "Afghanistan"},
    {"AG", "ATG", "Antigua and Barbuda"},
    {"AI", "AIA", "Anguilla"},
    {"AL", "ALB", "Albania"},
    {"AM", "ARM", "Armenia"},
    {"AO", "AGO", "Angola"},
    {"AQ", "ATA", "Antarctica"},
    {"AR", "ARG", "Argentina"},
    {"AS", "ASM", "American Samoa"},
    {"AT", "AUT", "Austria"},
    {"AU", "AUS", "Australia"},
    {"AW", "ABW", "Aruba"},
    {"AX", "ALA", "Åland Islands"},
    {"AZ", "AZE", "Azerbaijan"},
    {"BA", "BIH", "Bosnia and Herzegovina"},
    {"BB", "BRB", "Barbados"},
    {"BD", "BGD", "Bangladesh"},
    {"BE", "BEL", "Belgium"},
    {"BF", "BFA", "Burkina Faso"},
    {"BG", "BGR", "Bulgaria"},
    {"BH", "BHR", "Bahrain"},
    {"BI", "BDI", "Burundi"},
    {"BJ", "BEN", "Benin"},
    {"BL", "BLM", "Saint Barthélemy"},
    {"BM", "BMU", "Bermuda"},
    {"BN", "BRN", "Brunei Darussalam"},
    {"BO", "BOL", "Bolivia (Plurinational State of)"},
    {"BQ", "BES", "Bonaire, Sint Eustatius and Saba"},
    {"BR", "BRA", "Brazil"},
    {"BS", "BHS", "Bahamas"},
    {"BT", "BTN", "Bhutan"},
    {"BV", "BVT", "Bouvet Island"},
    {"BW", "BWA", "Botswana"},
    {"BY", "BLR", "Belarus"},
    {"BZ", "BLZ", "Belize"},
    {"CA", "CAN", "Canada"},
    {"CC", "CCK", "Cocos (Keeling) Islands"},
    {"CD", "COD", "Congo, Democratic Republic of the"},
    {"CF", "CAF", "Central African Republic"},
    {"CG", "COG", "Congo"},
    {"CH", "CHE", "Switzerland"},
    {"CI", "CIV", "Côte d'Ivoire"},
    {"CK", "COK", "Cook Islands"},
    {"CL", "CHL", "Chile"},
    {"CM", "CMR", "Cameroon"},
    {"CN", "CHN", "China"},
    {"CO", "COL", "Colombia"},
    {"CR", "CRI", "Costa Rica"},
    {"CU", "CUB", "Cuba"},
    {"CV", "CPV", "Cabo Verde"},
    {"CW", "CUW", "Curaçao"},
    {"CX", "CXR", "Christmas Island"},
    {"CY", "CYP", "Cyprus"},
    {"CZ", "CZE", "Czechia"},
    {"DE", "DEU", "Germany"},
    {"DJ", "DJI", "Djibouti"},
    {"DK", "DNK", "Denmark"},
    {"DM", "DMA", "Dominica"},
    {"DO", "DOM", "Dominican Republic"},
    {"DZ", "DZA", "Algeria"},
    {"EC", "ECU", "Ecuador"},
    {"EE", "EST", "Estonia"},
    {"EG", "EGY", "Egypt"},
    {"EH", "ESH", "Western Sahara"},
    {"ER", "ERI", "Eritrea"},
    {"ES", "ESP", "Spain"},
    {"ET", "ETH", "Ethiopia"},
    {"FI", "FIN", "Finland"},
    {"FJ", "FJI", "Fiji"},
    {"FK", "FLK", "Falkland Islands (Malvinas)"},
    {"FM", "FSM", "Micronesia (Federated States of)"},
    {"FO", "FRO", "Faroe Islands"},
    {"FR", "FRA", "France"},
    {"GA", "GAB", "Gabon"},
    {"GB", "GBR", "United Kingdom of Great Britain and Northern Ireland"},
    {"GD", "GRD", "Grenada"},
    {"GE", "GEO", "Georgia"},
    {"GF", "GUF", "French Guiana"},
    {"GG", "GGY", "Guernsey"},
    {"GH", "GHA", "Ghana"},
    {"GI", "GIB", "Gibraltar"},
    {"GL", "GRL", "Greenland"},
    {"GM", "GMB", "Gambia"},
    {"GN", "GIN", "Guinea"},
    {"GP", "GLP", "Guadeloupe"},
    {"GQ", "GNQ", "Equatorial Guinea"},
    {"GR", "GRC", "Greece"},
    {"GS", "SGS", "South Georgia and the South Sandwich Islands"},
    {"GT", "GTM", "Guatemala"},
    {"GU", "GUM", "Guam"},
    {"GW", "GNB", "Guinea-Bissau"},
    {"GY", "GUY", "Guyana"},
    {"HK", "HKG", "Hong Kong"},
    {"HM", "HMD", "Heard Island and McDonald Islands"},
    {"HN", "HND", "Honduras"},
    {"HR", "HRV", "Croatia"},
    {"HT", "HTI", "Haiti"},
    {"HU", "HUN", "Hungary"},
    {"ID", "IDN", "Indonesia"},
    {"IE", "IRL", "Ireland"},
    {"IL", "ISR", "Israel"},
    {"IM", "IMN", "Isle of Man"},
    {"IN", "IND", "India"},
    {"IO", "IOT", "British Indian Ocean Territory"},
    {"IQ", "IRQ", "Iraq"},
    {"IR", "IRN", "Iran (Islamic Republic of)"},
    {"IS", "ISL", "Iceland"},
    {"IT", "ITA", "Italy"},
    {"JE", "JEY", "Jersey"},
    {"JM", "JAM", "Jamaica"},
    {"JO", "JOR", "Jordan"},
    {"JP", "JPN", "Japan"},
    {"KE", "KEN", "Kenya"},
    {"KG", "KGZ", "Kyrgyzstan"},
    {"KH", "KHM", "Cambodia"},
    {"KI", "KIR", "Kiribati"},
    {"KM", "COM", "Comoros"},
    {"KN", "KNA", "Saint Kitts and Nevis"},
    {"KP", "PRK", "Korea (Democratic People's Republic of)"},
    {"KR", "KOR", "Korea, Republic of"},
    {"KW", "KWT", "Kuwait"},
    {"KY", "CYM", "Cayman Islands"},
    {"KZ", "KAZ", "Kazakhstan"},
    {"LA", "LAO", "Lao People's Democratic Republic"},
    {"LB", "LBN", "Lebanon"},
    {"LC", "LCA", "Saint Lucia"},
    {"LI", "LIE", "Liechtenstein"},
    {"LK", "LKA", "Sri Lanka"},
    {"LR", "LBR", "Liberia"},
    {"LS", "LSO", "Lesotho"},
    {"LT", "LTU", "Lithuania"},
    {"LU", "LUX", "Luxembourg"},
    {"LV", "LVA", "Latvia"},
    {"LY", "LBY", "Libya"},
    {"MA", "MAR", "Morocco"},
    {"MC", "MCO", "Monaco"},
    {"MD", "MDA", "Moldova, Republic of"},
    {"ME", "MNE", "Montenegro"},
    {"MF", "MAF", "Saint Martin (French part)"},
    {"MG", "MDG", "Madagascar"},
    {"MH", "MHL", "Marshall Islands"},
    {"MK", "MKD", "North Macedonia"},
    {"ML", "MLI", "Mali"},
    {"MM", "MMR", "Myanmar"},
    {"MN", "MNG", "Mongolia"},
    {"MO", "MAC", "Macao"},
    {"MP", "MNP", "Northern Mariana Islands"},
    {"MQ", "MTQ", "Martinique"},
    {"MR", "MRT", "Mauritania"},
    {"MS", "MSR", "Montserrat"},
    {"MT", "MLT", "Malta"},
    {"MU", "MUS", "Mauritius"},
    {"MV", "MDV", "Maldives"},
    {"MW", "MWI", "Malawi"},
    {"MX", "MEX", "Mexico"},
    {"MY", "MYS", "Malaysia"},
    {"MZ", "MOZ", "Mozambique"},
    {"NA", "NAM", "Namibia"},
    {"NC", "NCL", "New Caledonia"},
    {"NE", "NER", "Niger"},
    {"NF", "NFK", "Norfolk Island"},
    {"NG", "NGA", "Nigeria"},
    {"NI", "NIC", "Nicaragua"},
    {"NL", "NLD", "Netherlands"},
    {"NO", "NOR", "Norway"},
    {"NP", "NPL", "Nepal"},
    {"NR", "NRU", "Nauru"},
    {"NU", "NIU", "Niue"},
    {"NZ", "NZL", "New Zealand"},
    {"OM", "OMN", "Oman"},
    {"PA", "PAN", "Panama"},
    {"PE", "PER", "Peru"},
    {"PF", "PYF", "French Polynesia"},
    {"PG", "PNG", "Papua New Guinea"},
    {"PH", "PHL", "Philippines"},
    {"PK", "PAK", "Pakistan"},
    {"PL", "POL", "Poland"},
    {"PM", "SPM", "Saint Pierre and Miquelon"},
    {"PN", "PCN", "Pitcairn"},
    {"PR", "PRI", "Puerto Rico"},
    {"PS", "PSE", "Palestine, State of"},
    {"PT", "PRT", "Portugal"},
    {"PW", "PLW", "Palau"},
    {"PY", "PRY", "Paraguay"},
    {"QA", "QAT", "Qatar"},
    {"RE", "REU", "Réunion"},
    {"RO", "ROU", "Romania"},
    {"RS", "SRB", "Serbia"},
    {"RU", "RUS", "Russian Federation"},
    {"RW", "RWA", "Rwanda"},
    {"SA", "SAU", "Saudi Arabia"},
    {"SB", "SLB", "Solomon Islands"},
    {"SC", "SYC", "Seychelles"},
    {"SD", "SDN", "Sudan"},
    {"SE", "SWE", "Sweden"},
    {"SG", "SGP", "Singapore"},
    {"SH", "SHN", "Saint Helena, Ascension and Tristan da Cunha"},
    {"SI", "SVN", "Slovenia"},
    {"SJ", "SJM", "Svalbard and Jan Mayen"},
    {"SK", "SVK", "Slovakia"},
    {"SL", "SLE", "Sierra Leone"},
    {"SM", "SMR", "San Marino"},
    {"SN", "SEN", "Senegal"},
    {"SO", "SOM", "Somalia"},
    {"SR", "SUR", "Suriname"},
    {"SS", "SSD", "South Sudan"},
    {"ST", "STP", "Sao Tome and Principe"},
    {"SV", "SLV", "El Salvador"},
    {"SX", "SXM", "Sint Maarten (Dutch part)"},
    {"SY", "SYR", "Syrian Arab Republic"},
    {"SZ", "SWZ", "Eswatini"},
    {"TC", "TCA", "Turks and Caicos Islands"},
    {"TD", "TCD", "Chad"},
    {"TF", "ATF", "French Southern Territories"},
    {"TG", "TGO", "Togo"},
    {"TH", "THA", "Thailand"},
    {"TJ", "TJK", "Tajikistan"},
    {"TK", "TKL", "Tokelau"},
    {"TL", "TLS", "Timor-Leste"},
    {"TM", "TKM", "Turkmenistan"},
    {"TN", "TUN", "Tunisia"},
    {"TO", "TON", "Tonga"},
    {"TR", "TUR", "Türkiye"},
    {"TT", "TTO", "Trinidad and Tobago"},
    {"TV", "TUV", "Tuvalu"},
    {"TW", "TWN", "Taiwan, Province of China"},
    {"TZ", "TZA", "Tanzania, United Republic of"},
    {"UA", "UKR", "Ukraine"},
    {"UG", "UGA", "Uganda"},
    {"UM", "UMI", "United States Minor Outlying Islands"},
    {"US", "USA", "United States of America"},
    {"UY", "URY", "Uruguay"},
    {"UZ", "UZB", "Uzbekistan"},
    {"VA", "VAT", "Holy See"},
    {"VC", "VCT", "Saint Vincent and the Grenadines"},
    {"VE", "VEN", "Venezuela (Bolivarian Republic of)"},
    {"VG", "VGB", "Virgin Islands (British)"},
    {"VI", "VIR", "Virgin Islands (U.S.)"},
    {"VN", "VNM", "Viet Nam"},
    {"VU", "VUT", "Vanuatu"},
    {"WF", "WLF", "Wallis and Futuna"},
    {"WS", "WSM", "Samoa"},
    {"YE", "YEM", "Yemen"},
    {"YT", "MYT", "Mayotte"},
    {"ZA", "ZAF", "South Africa"},
    {"ZM", "ZMB", "Zambia"},
    {"ZW", "ZWE", "Zimbabwe"},
};

struct Alias {
  const char* name;
  const char* alpha2;
};

// Names in common use besides the ISO short names: former ISO names, names without the
// parenthesized qualifier, and the spellings that customer data and data generators use. "Korea"
// alone means the Republic of Korea, as in everyday use; "Congo" alone is ISO's own name for the
// Republic of the Congo. Withdrawn codes (the Netherlands Antilles) stay unknown.
constexpr Alias kAliases[] = {
    {"UK", "GB"},
    {"United Kingdom", "GB"},
    {"Great Britain", "GB"},
    {"Britain", "GB"},
    {"England", "GB"},
    {"Scotland", "GB"},
    {"Wales", "GB"},
    {"Northern Ireland", "GB"},
    {"United States", "US"},
    {"U.S.", "US"},
    {"U.S.A.", "US"},
    {"United States America", "US"},
    {"Korea", "KR"},
    {"South Korea", "KR"},
    {"Republic of Korea", "KR"},
    {"Korea, South", "KR"},
    {"Korea (Republic of)", "KR"},
    {"North Korea", "KP"},
    {"Korea, North", "KP"},
    {"Democratic People's Republic of Korea", "KP"},
    {"DPRK", "KP"},
    {"Cote d'Ivoire", "CI"},
    {"Ivory Coast", "CI"},
    {"Russia", "RU"},
    {"Iran", "IR"},
    {"Syria", "SY"},
    {"Vietnam", "VN"},
    {"Laos", "LA"},
    {"Bolivia", "BO"},
    {"Venezuela", "VE"},
    {"Tanzania", "TZ"},
    {"Moldova", "MD"},
    {"Micronesia", "FM"},
    {"Federated States of Micronesia", "FM"},
    {"Brunei", "BN"},
    {"Cape Verde", "CV"},
    {"Czech Republic", "CZ"},
    {"Swaziland", "SZ"},
    {"Macedonia", "MK"},
    {"Republic of North Macedonia", "MK"},
    {"Turkey", "TR"},
    {"Turkiye", "TR"},
    {"Burma", "MM"},
    {"East Timor", "TL"},
    {"Vatican", "VA"},
    {"Vatican City", "VA"},
    {"Vatican City State", "VA"},
    {"Holy See (Vatican City State)", "VA"},
    {"Palestine", "PS"},
    {"State of Palestine", "PS"},
    {"Palestinian Territory", "PS"},
    {"Palestinian Territories", "PS"},
    {"Occupied Palestinian Territory", "PS"},
    {"Libyan Arab Jamahiriya", "LY"},
    {"Taiwan", "TW"},
    {"Hong Kong SAR", "HK"},
    {"Hong Kong SAR China", "HK"},
    {"Macau", "MO"},
    {"Macao SAR China", "MO"},
    {"Democratic Republic of the Congo", "CD"},
    {"Congo, The Democratic Republic of the", "CD"},
    {"DR Congo", "CD"},
    {"DRC", "CD"},
    {"Congo (Kinshasa)", "CD"},
    {"Congo-Kinshasa", "CD"},
    {"Zaire", "CD"},
    {"Republic of the Congo", "CG"},
    {"Congo (Brazzaville)", "CG"},
    {"Congo-Brazzaville", "CG"},
    {"Kyrgyz Republic", "KG"},
    {"Slovak Republic", "SK"},
    {"Slovakia (Slovak Republic)", "SK"},
    {"Pitcairn Islands", "PN"},
    {"Saint Helena", "SH"},
    {"Saint Martin", "MF"},
    {"Sint Maarten", "SX"},
    {"Svalbard and Jan Mayen Islands", "SJ"},
    {"Bouvet Island (Bouvetoya)", "BV"},
    {"Antarctica (the territory South of 60 deg S)", "AQ"},
    {"British Indian Ocean Territory (Chagos Archipelago)", "IO"},
    {"Falkland Islands", "FK"},
    {"Malvinas", "FK"},
    {"Faeroe Islands", "FO"},
    {"Cocos Islands", "CC"},
    {"Keeling Islands", "CC"},
    {"Heard and McDonald Islands", "HM"},
    {"South Georgia", "GS"},
    {"Bonaire", "BQ"},
    {"Caribbean Netherlands", "BQ"},
    {"Wallis and Futuna Islands", "WF"},
    {"Holland", "NL"},
    {"The Netherlands", "NL"},
    {"Sao Tome", "ST"},
    {"Saint Vincent", "VC"},
    {"Saint Kitts", "KN"},
    {"Trinidad", "TT"},
    {"Antigua", "AG"},
    {"Bosnia", "BA"},
    {"Bosnia-Herzegovina", "BA"},
    {"US Virgin Islands", "VI"},
    {"U.S. Virgin Islands", "VI"},
    {"United States Virgin Islands", "VI"},
    {"Virgin Islands, U.S.", "VI"},
    {"British Virgin Islands", "VG"},
    {"Virgin Islands, British", "VG"},
    {"US Minor Outlying Islands", "UM"},
    {"UAE", "AE"},
    {"Emirates", "AE"},
    {"Kingdom of Saudi Arabia", "SA"},
    {"People's Republic of China", "CN"},
    {"PRC", "CN"},
    {"Mainland China", "CN"},
    {"Republic of Ireland", "IE"},
    {"Eire", "IE"},
    {"Timor Leste", "TL"},
    {"Reunion", "RE"},
    {"Curacao", "CW"},
    {"Saint Barthelemy", "BL"},
    {"Aland Islands", "AX"},
    {"Aland", "AX"},
};

struct Subdivision {
  const char* country;
  const char* code;
  const char* name;
};

constexpr Subdivision kSubdivisions[] = {
    {"US", "al", "Alabama"},
    {"US", "ak", "Alaska"},
    {"US", "az", "Arizona"},
    {"US", "ar", "Arkansas"},
    {"US", "ca", "California"},
    {"US", "co", "Colorado"},
    {"US", "ct", "Connecticut"},
    {"US", "de", "Delaware"},
    {"US", "dc", "District of Columbia"},
    {"US", "fl", "Florida"},
    {"US", "ga", "Georgia"},
    {"US", "hi", "Hawaii"},
    {"US", "id", "Idaho"},
    {"US", "il", "Illinois"},
    {"US", "in", "Indiana"},
    {"US", "ia", "Iowa"},
    {"US", "ks", "Kansas"},
    {"US", "ky", "Kentucky"},
    {"US", "la", "Louisiana"},
    {"US", "me", "Maine"},
    {"US", "md", "Maryland"},
    {"US", "ma", "Massachusetts"},
    {"US", "mi", "Michigan"},
    {"US", "mn", "Minnesota"},
    {"US", "ms", "Mississippi"},
    {"US", "mo", "Missouri"},
    {"US", "mt", "Montana"},
    {"US", "ne", "Nebraska"},
    {"US", "nv", "Nevada"},
    {"US", "nh", "New Hampshire"},
    {"US", "nj", "New Jersey"},
    {"US", "nm", "New Mexico"},
    {"US", "ny", "New York"},
    {"US", "nc", "North Carolina"},
    {"US", "nd", "North Dakota"},
    {"US", "oh", "Ohio"},
    {"US", "ok", "Oklahoma"},
    {"US", "or", "Oregon"},
    {"US", "pa", "Pennsylvania"},
    {"US", "ri", "Rhode Island"},
    {"US", "sc", "South Carolina"},
    {"US", "sd", "South Dakota"},
    {"US", "tn", "Tennessee"},
    {"US", "tx", "Texas"},
    {"US", "ut", "Utah"},
    {"US", "vt", "Vermont"},
    {"US", "va", "Virginia"},
    {"US", "wa", "Washington"},
    {"US", "wv", "West Virginia"},
    {"US", "wi", "Wisconsin"},
    {"US", "wy", "Wyoming"},
    {"US", "as", "American Samoa"},
    {"US", "gu", "Guam"},
    {"US", "mp", "Northern Mariana Islands"},
    {"US", "pr", "Puerto Rico"},
    {"US", "vi", "U.S. Virgin Islands"},
    {"US", "um", "U.S. Minor Outlying Islands"},
    {"US", "aa", "Armed Forces Americas"},
    {"US", "ae", "Armed Forces Europe"},
    {"US", "ap", "Armed Forces Pacific"},
    {"CA", "ab", "Alberta"},
    {"CA", "bc", "British Columbia"},
    {"CA", "mb", "Manitoba"},
    {"CA", "nb", "New Brunswick"},
    {"CA", "nl", "Newfoundland and Labrador"},
    {"CA", "ns", "Nova Scotia"},
    {"CA", "nt", "Northwest Territories"},
    {"CA", "nu", "Nunavut"},
    {"CA", "on", "Ontario"},
    {"CA", "pe", "Prince Edward Island"},
    {"CA", "qc", "Québec"},
    {"CA", "sk", "Saskatchewan"},
    {"CA", "yt", "Yukon"},
};

constexpr Subdivision kSubdivisionAliases[] = {
    {"US", "dc", "Washington DC"},
    {"US", "dc", "Washington D.C."},
    {"US", "vi", "United States Virgin Islands"},
    {"US", "vi", "US Virgin Islands"},
    {"CA", "qc", "Quebec"},
    {"CA", "nl", "Newfoundland"},
    {"CA", "yt", "Yukon Territory"},
    {"CA", "pe", "PEI"},
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
};

using LookupMap = std::unordered_map<std::string, std::string_view, StringHash, std::equal_to<>>;

std::string fold(std::string_view text) {
  std::string folded;
  bool ascii = true;
  for (char c : text) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  fold_for_lookup(text, ascii, folded);
  return folded;
}

const LookupMap& country_map() {
  static const LookupMap* const kMap = [] {
    auto* map = new LookupMap();
    for (const Country& country : kCountries) {
      map->emplace(fold(country.alpha2), country.alpha2);
      map->emplace(fold(country.alpha3), country.alpha2);
      map->emplace(fold(country.name), country.alpha2);
    }
    for (const Alias& alias : kAliases) map->emplace(fold(alias.name), alias.alpha2);
    return map;
  }();
  return *kMap;
}

// Keys are "<country> <folded name or code>", so one map serves both countries.
const LookupMap& subdivision_map() {
  static const LookupMap* const kMap = [] {
    auto* map = new LookupMap();
    auto add = [&](const Subdivision& entry) {
      std::string prefix = std::string(entry.country) + " ";
      map->emplace(prefix + fold(entry.name), entry.code);
      map->emplace(prefix + fold(entry.code), entry.code);
    };
    for (const Subdivision& entry : kSubdivisions) add(entry);
    for (const Subdivision& entry : kSubdivisionAliases) add(entry);
    return map;
  }();
  return *kMap;
}

std::string_view find(const LookupMap& map, std::string_view key) {
  auto it = map.find(key);
  return it == map.end() ? std::string_view() : it->second;
}

// Rewrites tried, in order, when the folded name is not in the table.
std::string_view lookup_folded(const LookupMap& map, std::string& key) {
  if (auto found = find(map, key); !found.empty()) return found;

  std::string_view view = key;
  bool changed = false;
  if (view.substr(0, 4) == "the ") {
    view.remove_prefix(4);
    changed = true;
  }
  if (view.size() > 4 && view.substr(view.size() - 4) == " the") {
    view.remove_suffix(4);
    changed = true;
  }
  if (changed) {
    if (auto found = find(map, view); !found.empty()) return found;
  }
  if (view.substr(0, 3) == "st ") {
    std::string saint = "saint ";
    saint.append(view.substr(3));
    if (auto found = find(map, saint); !found.empty()) return found;
  }
  return {};
}

std::string_view lookup_name(std::string_view value, bool ascii);

// Direct tables for the common case of a code: 26*26 slots for two letters, 26*26*26 for three,
// each holding the alpha-2 code or nothing.
struct CodeTables {
  std::array<const char*, 26 * 26> alpha2{};
  std::vector<const char*> alpha3 = std::vector<const char*>(26 * 26 * 26, nullptr);
};

int letter_index(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return c - 'A';
  return -1;
}

const CodeTables& code_tables() {
  static const CodeTables* const kTables = [] {
    auto* tables = new CodeTables();
    for (const Country& country : kCountries) {
      tables->alpha2[letter_index(country.alpha2[0]) * 26 + letter_index(country.alpha2[1])] = country.alpha2;
      tables->alpha3[(letter_index(country.alpha3[0]) * 26 + letter_index(country.alpha3[1])) * 26 +
                     letter_index(country.alpha3[2])] = country.alpha2;
    }
    // "UK" is reserved in ISO 3166-1 at the United Kingdom's request and in wide use.
    tables->alpha2[letter_index('U') * 26 + letter_index('K')] = "GB";
    return tables;
  }();
  return *kTables;
}

// Returns the alpha-2 code for a two- or three-letter code in any case, or nullptr.
const char* lookup_code(std::string_view value) {
  if (value.size() == 2) {
    int a = letter_index(value[0]);
    int b = letter_index(value[1]);
    if (a < 0 || b < 0) return nullptr;
    return code_tables().alpha2[a * 26 + b];
  }
  if (value.size() == 3) {
    int a = letter_index(value[0]);
    int b = letter_index(value[1]);
    int c = letter_index(value[2]);
    if (a < 0 || b < 0 || c < 0) return nullptr;
    return code_tables().alpha3[(a * 26 + b) * 26 + c];
  }
  return nullptr;
}

}  // namespace

bool is_alpha2_code(std::string_view code) {
  if (code.size() != 2 || code == "UK") return false;
  for (char c : code) {
    if (c < 'A' || c > 'Z') return false;
  }
  return lookup_code(code) != nullptr;
}

std::string_view lookup_country(std::string_view value, bool ascii) {
  if (const char* code = lookup_code(value)) return code;

  // Customer lists repeat a few hundred country spellings at most, so recent results stay in a
  // small two-way cache keyed by the raw value, one per thread. With one way, a file of 243
  // spellings lost a third of its lookups to slot conflicts.
  struct CachedLookup {
    std::string value;
    std::string_view code;
    bool used = false;
  };
  struct CacheSet {
    std::array<CachedLookup, 2> ways;
    std::uint8_t recent = 0;  // The way that was used last.
  };
  constexpr std::size_t kCacheSets = 512;
  struct Cache {
    std::array<CacheSet, kCacheSets> sets;
    // The slot of the last lookup: a row's country field usually follows its phones, which looked
    // up the same value. A slot always contains a value with its own code, even once reused.
    const CachedLookup* last = nullptr;
  };
  Cache& cache = internal::per_thread<Cache>();
  if (cache.last != nullptr && cache.last->value == value) return cache.last->code;

  // The value eight bytes at a time, each word multiplied in (the multiplier of MurmurHash3's
  // finalizer), with its length.
  constexpr std::uint64_t kMultiplier = 0xff51afd7ed558ccdull;
  std::uint64_t hash = value.size();
  std::size_t at = 0;
  for (; at + 8 <= value.size(); at += 8) {
    std::uint64_t word;
    std::memcpy(&word, value.data() + at, sizeof word);
    hash = (hash ^ word) * kMultiplier;
    hash ^= hash >> 32;
  }
  if (at < value.size()) {
    std::uint64_t word = 0;
    for (std::size_t i = at; i < value.size(); ++i) word |= std::uint64_t{static_cast<unsigned char>(value[i])} << (8 * (i - at));
    hash = (hash ^ word) * kMultiplier;
    hash ^= hash >> 32;
  }
  CacheSet& set = cache.sets[hash % kCacheSets];
  for (std::uint8_t way = 0; way < 2; ++way) {
    const CachedLookup& slot = set.ways[way];
    if (slot.used && slot.value == value) {
      set.recent = way;
      cache.last = &slot;
      return slot.code;
    }
  }

  std::string_view code = lookup_name(value, ascii);
  if (value.size() <= 64) {
    set.recent = static_cast<std::uint8_t>(1 - set.recent);
    CachedLookup& slot = set.ways[set.recent];
    slot.value.assign(value);
    slot.code = code;
    slot.used = true;
    cache.last = &slot;
  }
  return code;
}

namespace {

std::string_view lookup_name(std::string_view value, bool ascii) {
  const LookupMap& map = country_map();
  thread_local std::string key;
  fold_for_lookup(value, ascii, key);
  if (auto found = lookup_folded(map, key); !found.empty()) return found;

  // "Falkland Islands (Malvinas)": try again without the remark in parentheses.
  std::size_t open = value.find('(');
  if (open == std::string_view::npos) return {};
  std::size_t close = value.find(')', open);
  std::string without(value.substr(0, open));
  if (close != std::string_view::npos) without.append(value.substr(close + 1));
  fold_for_lookup(without, ascii, key);
  return lookup_folded(map, key);
}

}  // namespace

std::string_view lookup_subdivision(std::string_view value, bool ascii, std::string_view country) {
  const LookupMap& map = subdivision_map();
  thread_local std::string folded;
  thread_local std::string key;
  fold_for_lookup(value, ascii, folded);
  for (std::string_view candidate : {std::string_view("US"), std::string_view("CA")}) {
    if (!country.empty() && country != candidate) continue;
    key.assign(candidate);
    key.push_back(' ');
    key.append(folded);
    if (auto found = find(map, key); !found.empty()) return found;
  }
  return {};
}

}  // namespace activation::identifiers

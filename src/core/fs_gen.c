/*
 * fs_gen: synthetic transactions in the manner of Sparkov (see fs_gen.h for the model).
 *
 * Days are generated one at a time: the day's legitimate purchases (count from the weekly
 * and seasonal rhythm), plus the fraud events of open episodes that fall on that day, sorted
 * by time. Each row is formatted once into text cells and then read back through
 * fs_txn_from_strings, so the record handed out is exactly what a reader of the CSV gets.
 */
#include "fs_gen.h"
#include "fs_err.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers: xoshiro256** seeded with splitmix64 ---- */

typedef struct {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1). */
static double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n). */
static uint32_t rng_below(rng *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static double rng_uniform(rng *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_unit(r);
}

/* Standard normal (Box-Muller, one value per call for simplicity). */
static double rng_normal(rng *r)
{
    double u1 = rng_unit(r), u2 = rng_unit(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Poisson: Knuth's product method for small means, a rounded normal for large ones. */
static int rng_poisson(rng *r, double mean)
{
    if (mean <= 0)
        return 0;
    if (mean > 50) {
        double v = mean + sqrt(mean) * rng_normal(r) + 0.5;
        return v < 0 ? 0 : (int)v;
    }
    double l = exp(-mean), p = 1.0;
    int k = 0;
    do {
        k++;
        p *= rng_unit(r);
    } while (p > l);
    return k - 1;
}

/* Index drawn from cumulative weights cum[0..n-1] (cum[n-1] = total). */
static int pick_cum(rng *r, const double *cum, int n)
{
    double x = rng_unit(r) * cum[n - 1];
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* ---- the world's vocabulary ---- */

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const categories[FS_GEN_NCATEGORIES] = {
    "gas_transport", "grocery_net",   "grocery_pos",  "misc_net",       "misc_pos",
    "shopping_net",  "shopping_pos",  "entertainment", "food_dining",   "health_fitness",
    "home",          "kids_pets",     "personal_care", "travel",
};

/* Per category: share of legitimate purchases (roughly the Kaggle data's mix), lognormal
 * amount (mu, sigma of log dollars), share of fraud rows and the fraud amount range. */
static const struct {
    double weight, mu, sigma, fraud_weight, fraud_lo, fraud_hi;
} cat_model[FS_GEN_NCATEGORIES] = {
    /* gas_transport */ {10.2, 4.10, 0.35, 8.0, 8.0, 22.0},
    /* grocery_net   */ {3.5, 3.95, 0.30, 2.0, 10.0, 25.0},
    /* grocery_pos   */ {9.5, 4.60, 0.45, 25.0, 270.0, 360.0},
    /* misc_net      */ {4.9, 3.00, 1.20, 12.0, 700.0, 1050.0},
    /* misc_pos      */ {6.1, 3.50, 1.00, 3.0, 150.0, 400.0},
    /* shopping_net  */ {7.5, 3.20, 1.30, 23.0, 800.0, 1300.0},
    /* shopping_pos  */ {9.0, 3.30, 1.20, 9.0, 700.0, 1100.0},
    /* entertainment */ {7.3, 3.80, 0.90, 3.0, 400.0, 600.0},
    /* food_dining   */ {7.1, 3.50, 0.90, 2.0, 80.0, 130.0},
    /* health_fitness*/ {6.6, 3.80, 0.70, 2.0, 15.0, 25.0},
    /* home          */ {9.5, 3.80, 0.80, 3.0, 200.0, 300.0},
    /* kids_pets     */ {8.7, 3.70, 0.90, 3.0, 15.0, 30.0},
    /* personal_care */ {7.0, 3.40, 0.90, 3.0, 20.0, 40.0},
    /* travel        */ {3.1, 3.00, 1.60, 2.0, 8.0, 20.0},
};

/* Legitimate purchases by hour of day: afternoons and evenings busier than nights and
 * mornings, as in the Kaggle data. */
static const double hour_weight[24] = {
    3.2, 3.2, 3.2, 3.2, 3.2, 3.2, 3.2, 3.2, 3.2, 3.2, 3.2, 3.2,
    5.1, 5.1, 5.1, 5.1, 5.1, 5.1, 5.1, 5.1, 5.1, 5.1, 5.1, 5.1,
};

/* Monday first (1970-01-01 was a Thursday); weekends busiest. */
static const double weekday_factor[7] = {1.00, 0.85, 0.80, 0.85, 0.95, 1.15, 1.25};
/* January first; December busiest, late winter quiet. */
static const double month_factor[12] = {0.80, 0.80, 0.95, 0.95, 1.00, 1.10,
                                        1.10, 1.05, 0.95, 1.00, 1.10, 1.60};

/* Legitimate purchases per customer per day at factor 1 (the Kaggle data: ~1.3M rows from
 * ~1000 cards over 18 months). */
#define PER_CUSTOMER_DAY 2.4

static const char *const first_female[] = {
    "Jennifer", "Mary",    "Patricia", "Linda",    "Elizabeth", "Barbara",  "Susan",
    "Jessica",  "Sarah",   "Karen",    "Nancy",    "Lisa",      "Margaret", "Betty",
    "Sandra",   "Ashley",  "Kimberly", "Emily",    "Donna",     "Michelle", "Carol",
    "Amanda",   "Melissa", "Deborah",  "Stephanie", "Rebecca",  "Laura",    "Sharon",
    "Cynthia",  "Kathleen", "Amy",     "Shirley",  "Angela",    "Helen",    "Anna",
    "Brenda",   "Pamela",  "Nicole",   "Samantha", "Katherine", "Christine", "Debra",
    "Rachel",   "Catherine", "Carolyn", "Janet",   "Heather",   "Maria",    "Diane",
    "Julie",    "Joyce",   "Victoria", "Kelly",    "Christina", "Lauren",   "Joan",
    "Evelyn",   "Olivia",  "Judith",   "Megan",    "Cheryl",    "Martha",   "Andrea",
};
static const char *const first_male[] = {
    "James",   "Robert",  "John",    "Michael",  "David",   "William",   "Richard",
    "Joseph",  "Thomas",  "Charles", "Christopher", "Daniel", "Matthew", "Anthony",
    "Mark",    "Donald",  "Steven",  "Paul",     "Andrew",  "Joshua",    "Kenneth",
    "Kevin",   "Brian",   "George",  "Timothy",  "Ronald",  "Edward",    "Jason",
    "Jeffrey", "Ryan",    "Jacob",   "Gary",     "Nicholas", "Eric",     "Jonathan",
    "Stephen", "Larry",   "Justin",  "Scott",    "Brandon", "Benjamin",  "Samuel",
    "Gregory", "Alexander", "Frank", "Patrick",  "Raymond", "Jack",      "Dennis",
    "Jerry",   "Tyler",   "Aaron",   "Jose",     "Adam",    "Nathan",    "Henry",
    "Douglas", "Zachary", "Peter",   "Kyle",     "Walter",  "Ethan",     "Harold",
};
/* Surnames for customers and, Faker-style, for merchant names. */
static const char *const last_names[] = {
    "Smith",     "Johnson",  "Williams", "Brown",     "Jones",     "Garcia",   "Miller",
    "Davis",     "Rodriguez", "Martinez", "Hernandez", "Lopez",    "Gonzalez", "Wilson",
    "Anderson",  "Thomas",   "Taylor",   "Moore",     "Jackson",   "Martin",   "Lee",
    "Perez",     "Thompson", "White",    "Harris",    "Sanchez",   "Clark",    "Ramirez",
    "Lewis",     "Robinson", "Walker",   "Young",     "Allen",     "King",     "Wright",
    "Scott",     "Torres",   "Nguyen",   "Hill",      "Flores",    "Green",    "Adams",
    "Nelson",    "Baker",    "Hall",     "Rivera",    "Campbell",  "Mitchell", "Carter",
    "Roberts",   "Kirlin",   "Rippin",   "Heller",    "Gutmann",   "Zieme",    "Lind",
    "Buckridge", "Sporer",   "Keebler",  "Haley",     "Johnston",  "Casper",   "Daugherty",
    "Romaguera", "Kub",      "Mann",     "Bashirian", "Kris",      "Lesch",    "Schmidt",
    "Kutch",     "Hermiston", "Goyette", "Medhurst",  "Hudson",    "Wuckert",  "Stracke",
    "Abbott",    "Bernier",  "Boyer",    "Cassin",    "Champlin",  "Cormier",  "Dach",
    "Dicki",     "Donnelly", "Durgan",   "Ebert",     "Effertz",   "Erdman",   "Fadel",
    "Feest",     "Fisher",   "Friesen",  "Gerlach",   "Gislason",  "Gleichner", "Grady",
    "Hackett",   "Hahn",     "Hammes",   "Hansen",    "Harber",    "Hartmann", "Hilll",
    "Jacobi",    "Jakubowski", "Jast",   "Jerde",     "Kassulke",  "Kemmer",   "Kihn",
    "Koepp",     "Kozey",    "Kuhic",    "Kunze",     "Langosh",   "Larkin",   "Lebsack",
    "Leffler",   "Lemke",    "Lockman",  "Lowe",      "Marks",     "Mayert",   "McDermott",
    "Mertz",     "Monahan",  "Morar",    "Murazik",   "Nader",     "Nitzsche", "Okuneva",
    "Ondricka",  "Pacocha",  "Parisian", "Pfeffer",   "Prosacco",  "Quigley",  "Reichel",
    "Rempel",    "Reynolds", "Rohan",    "Rolfson",   "Rutherford", "Schaefer", "Schultz",
    "Shields",   "Skiles",   "Spencer",  "Stamm",     "Stanton",   "Swift",    "Terry",
    "Tillman",   "Torp",     "Towne",    "Trantow",   "Turcotte",  "Volkman",  "Waelchi",
    "Walter",    "Weber",    "Welch",    "Wiegand",   "Witting",   "Wolff",    "Yost",
    "Ziemann",   "Zulauf",
};
static const char *const merchant_suffix[] = {
    " and Sons", " LLC", " Ltd", " Group", " Inc", " PLC",
};
static const char *const street_names[] = {
    "Perry",     "Main",     "Oak",      "Pine",     "Maple",    "Cedar",    "Elm",
    "Washington", "Lake",    "Hill",     "Park",     "Sunset",   "Ridge",    "River",
    "Church",    "Highland", "Mill",     "Spring",   "Forest",   "Jackson",  "Lincoln",
    "Adams",     "Madison",  "Franklin", "Jefferson", "Walnut",  "Willow",   "Cherry",
    "Meadow",    "Valley",   "Smith",    "Johnson",  "Sanders",  "Bennett",  "Garcia",
    "Ortiz",     "Harris",   "Murphy",   "Kelly",    "Summit",   "Bridge",   "Stone",
    "Brook",     "Dale",     "Grove",    "Heather",  "Jasmine",  "Logan",    "Morgan",
};
static const char *const street_suffix[] = {
    "Street", "Avenue", "Road", "Drive", "Lane", "Court", "Cove", "Way",
    "Place",  "Trail",  "Ports", "Mill", "Plains", "Crossing", "Ville",
};
static const char *const jobs[] = {
    "Psychologist, counselling", "Special educational needs teacher",
    "Nature conservation officer", "Patent attorney", "Dance movement psychotherapist",
    "Transport planner", "Arboriculturist", "Designer, jewellery", "Chartered accountant",
    "Film/video editor", "Exhibition designer", "Surveyor, land/geomatics",
    "Systems developer", "Naval architect", "Materials engineer", "Production assistant, radio",
    "Teacher, primary school", "Paramedic", "Radio producer", "Engineer, biomedical",
    "Sales executive", "Therapist, occupational", "Financial adviser", "IT trainer",
    "Librarian, public", "Pharmacist, community", "Mining engineer", "Research scientist (maths)",
    "Editor, magazine features", "Geologist, wellsite", "Physiotherapist",
    "Programmer, multimedia", "Insurance underwriter", "Quantity surveyor", "Fish farm manager",
    "Tax adviser", "Event organiser", "Police officer", "Retail manager", "Electrical engineer",
    "Doctor, hospital", "Nurse, adult", "Web designer", "Chief Executive Officer",
    "Water engineer", "Architect", "Barrister", "Social worker", "Air cabin crew",
    "Animal nutritionist", "Copywriter, advertising", "Trade mark attorney",
    "Historic buildings inspector/conservation officer", "Land/geomatics surveyor",
    "Hydrologist", "Podiatrist", "Sports development officer", "Administrator, education",
    "Careers information officer", "Civil engineer, contracting", "Public relations officer",
    "Science writer", "Set designer", "Clinical research associate", "Estate agent",
};
/* Home cities: name, state, latitude, longitude, population, first post code. */
static const struct {
    const char *city, *state;
    double lat, lon;
    int population, zip;
} cities[] = {
    {"Moravian Falls", "NC", 36.0788, -81.1781, 3495, 28654},
    {"Orient", "WA", 48.8878, -118.2105, 149, 99160},
    {"Malad City", "ID", 42.1808, -112.2620, 4154, 83252},
    {"Boulder", "MT", 46.2306, -112.1138, 1939, 59632},
    {"Doe Hill", "VA", 38.4207, -79.4629, 99, 24433},
    {"Dublin", "PA", 40.3750, -75.2045, 2158, 18917},
    {"Holcomb", "KS", 37.9931, -100.9893, 2691, 67851},
    {"Edinburg", "VA", 38.8432, -78.6003, 6018, 22824},
    {"Manor", "PA", 40.3359, -79.6607, 1472, 15665},
    {"Clarksville", "TN", 36.5220, -87.3490, 151785, 37040},
    {"Grenada", "CA", 41.6125, -122.5258, 589, 96038},
    {"High Rolls Mountain Park", "NM", 32.9396, -105.8189, 899, 88325},
    {"Harrington Park", "NJ", 40.9918, -73.9800, 4664, 7640},
    {"North Loup", "NE", 41.4972, -98.7858, 1078, 68859},
    {"Plainfield", "NJ", 40.6152, -74.4150, 71485, 7060},
    {"Houston", "TX", 29.7604, -95.3698, 2304580, 77002},
    {"New York City", "NY", 40.7128, -74.0060, 8336817, 10001},
    {"Los Angeles", "CA", 34.0522, -118.2437, 3898747, 90001},
    {"Chicago", "IL", 41.8781, -87.6298, 2746388, 60601},
    {"Phoenix", "AZ", 33.4484, -112.0740, 1608139, 85001},
    {"Philadelphia", "PA", 39.9526, -75.1652, 1603797, 19102},
    {"San Antonio", "TX", 29.4241, -98.4936, 1434625, 78201},
    {"Dallas", "TX", 32.7767, -96.7970, 1304379, 75201},
    {"Jacksonville", "FL", 30.3322, -81.6557, 949611, 32099},
    {"Columbus", "OH", 39.9612, -82.9988, 905748, 43085},
    {"Charlotte", "NC", 35.2271, -80.8431, 874579, 28202},
    {"Indianapolis", "IN", 39.7684, -86.1581, 887642, 46201},
    {"Denver", "CO", 39.7392, -104.9903, 715522, 80202},
    {"Nashville", "TN", 36.1627, -86.7816, 689447, 37201},
    {"Oklahoma City", "OK", 35.4676, -97.5164, 681054, 73102},
    {"Louisville", "KY", 38.2527, -85.7585, 617638, 40202},
    {"Milwaukee", "WI", 43.0389, -87.9065, 577222, 53202},
    {"Albuquerque", "NM", 35.0844, -106.6504, 564559, 87101},
    {"Tucson", "AZ", 32.2226, -110.9747, 542629, 85701},
    {"Sacramento", "CA", 38.5816, -121.4944, 524943, 95814},
    {"Kansas City", "MO", 39.0997, -94.5786, 508090, 64105},
    {"Atlanta", "GA", 33.7490, -84.3880, 498715, 30303},
    {"Omaha", "NE", 41.2565, -95.9345, 486051, 68102},
    {"Raleigh", "NC", 35.7796, -78.6382, 467665, 27601},
    {"Miami", "FL", 25.7617, -80.1918, 442241, 33130},
    {"Minneapolis", "MN", 44.9778, -93.2650, 429954, 55401},
    {"Tulsa", "OK", 36.1540, -95.9928, 413066, 74103},
    {"Wichita", "KS", 37.6872, -97.3301, 397532, 67202},
    {"Cleveland", "OH", 41.4993, -81.6944, 372624, 44113},
    {"Pittsburgh", "PA", 40.4406, -79.9959, 302971, 15222},
    {"Cincinnati", "OH", 39.1031, -84.5120, 309317, 45202},
    {"Saint Louis", "MO", 38.6270, -90.1994, 301578, 63101},
    {"Lexington", "KY", 38.0406, -84.5037, 322570, 40507},
    {"Birmingham", "AL", 33.5186, -86.8104, 200733, 35203},
    {"Des Moines", "IA", 41.5868, -93.6250, 214133, 50309},
    {"Boise", "ID", 43.6150, -116.2023, 235684, 83702},
    {"Spokane", "WA", 47.6588, -117.4260, 228989, 99201},
    {"Little Rock", "AR", 34.7465, -92.2896, 202591, 72201},
    {"Salt Lake City", "UT", 40.7608, -111.8910, 199723, 84101},
    {"Jackson", "MS", 32.2988, -90.1848, 153701, 39201},
    {"Charleston", "WV", 38.3498, -81.6326, 48864, 25301},
    {"Burlington", "VT", 44.4759, -73.2121, 44743, 5401},
    {"Bangor", "ME", 44.8016, -68.7712, 31753, 4401},
    {"Fargo", "ND", 46.8772, -96.7898, 125990, 58102},
    {"Sioux Falls", "SD", 43.5446, -96.7311, 192517, 57104},
    {"Billings", "MT", 45.7833, -108.5007, 117116, 59101},
    {"Cheyenne", "WY", 41.1400, -104.8202, 65132, 82001},
    {"Reno", "NV", 39.5296, -119.8138, 264165, 89501},
    {"Eugene", "OR", 44.0521, -123.0868, 176654, 97401},
    {"Fresno", "CA", 36.7378, -119.7871, 542107, 93650},
    {"Bakersfield", "CA", 35.3733, -119.0187, 403455, 93301},
    {"El Paso", "TX", 31.7619, -106.4850, 678815, 79901},
    {"Lubbock", "TX", 33.5779, -101.8552, 257141, 79401},
    {"Shreveport", "LA", 32.5252, -93.7502, 187593, 71101},
    {"Baton Rouge", "LA", 30.4515, -91.1871, 227470, 70801},
    {"Mobile", "AL", 30.6954, -88.0399, 187041, 36602},
    {"Savannah", "GA", 32.0809, -81.0912, 147780, 31401},
    {"Columbia", "SC", 34.0007, -81.0348, 136632, 29201},
    {"Richmond", "VA", 37.5407, -77.4360, 226610, 23219},
    {"Baltimore", "MD", 39.2904, -76.6122, 585708, 21201},
    {"Hartford", "CT", 41.7658, -72.6734, 121054, 6103},
    {"Providence", "RI", 41.8240, -71.4128, 190934, 2903},
    {"Worcester", "MA", 42.2626, -71.8023, 206518, 1608},
    {"Albany", "NY", 42.6526, -73.7562, 99224, 12207},
    {"Syracuse", "NY", 43.0481, -76.1474, 148620, 13202},
    {"Erie", "PA", 42.1292, -80.0851, 94831, 16501},
    {"Toledo", "OH", 41.6528, -83.5379, 270871, 43604},
    {"Grand Rapids", "MI", 42.9634, -85.6681, 198917, 49503},
    {"Lansing", "MI", 42.7325, -84.5555, 112644, 48933},
    {"Madison", "WI", 43.0731, -89.4012, 269840, 53703},
    {"Peoria", "IL", 40.6936, -89.5890, 113150, 61602},
    {"Springfield", "MO", 37.2090, -93.2923, 169176, 65806},
    {"Topeka", "KS", 39.0473, -95.6752, 126587, 66603},
    {"Lincoln", "NE", 40.8136, -96.7026, 291082, 68508},
    {"Rapid City", "SD", 44.0805, -103.2310, 74703, 57701},
    {"Bismarck", "ND", 46.8083, -100.7837, 73622, 58501},
    {"Duluth", "MN", 46.7867, -92.1005, 86697, 55802},
    {"Fairbanks", "AK", 64.8378, -147.7164, 32515, 99701},
    {"Anchorage", "AK", 61.2181, -149.9003, 291247, 99501},
    {"Honolulu", "HI", 21.3069, -157.8583, 350964, 96813},
    {"Hilo", "HI", 19.7241, -155.0868, 44186, 96720},
    {"Flagstaff", "AZ", 35.1983, -111.6513, 76831, 86001},
    {"Santa Fe", "NM", 35.6870, -105.9378, 87505, 87501},
    {"Pueblo", "CO", 38.2544, -104.6091, 111876, 81003},
    {"Casper", "WY", 42.8666, -106.3131, 59038, 82601},
    {"Missoula", "MT", 46.8721, -113.9940, 73489, 59801},
    {"Yakima", "WA", 46.6021, -120.5059, 96968, 98901},
    {"Medford", "OR", 42.3265, -122.8756, 85824, 97501},
    {"Redding", "CA", 40.5865, -122.3917, 93611, 96001},
    {"Amarillo", "TX", 35.2220, -101.8313, 200393, 79101},
    {"Tyler", "TX", 32.3513, -95.3011, 105995, 75701},
    {"Laredo", "TX", 27.5306, -99.4803, 255205, 78040},
    {"Gainesville", "FL", 29.6516, -82.3248, 141085, 32601},
    {"Tallahassee", "FL", 30.4383, -84.2807, 196169, 32301},
    {"Knoxville", "TN", 35.9606, -83.9207, 190740, 37902},
    {"Asheville", "NC", 35.5951, -82.5515, 94589, 28801},
    {"Roanoke", "VA", 37.2710, -79.9414, 100011, 24011},
    {"Morgantown", "WV", 39.6295, -79.9559, 30347, 26501},
    {"Altoona", "PA", 40.5187, -78.3947, 43963, 16601},
    {"Utica", "NY", 43.1009, -75.2327, 65283, 13501},
    {"Portland", "ME", 43.6591, -70.2568, 68408, 4101},
    {"Concord", "NH", 43.2081, -71.5376, 43976, 3301},
    {"Dover", "DE", 39.1582, -75.5244, 39403, 19901},
    {"Wilmington", "NC", 34.2257, -77.9447, 115451, 28401},
    {"Athens", "GA", 33.9519, -83.3576, 127315, 30601},
    {"Huntsville", "AL", 34.7304, -86.5861, 215006, 35801},
    {"Fort Smith", "AR", 35.3859, -94.3985, 89142, 72901},
    {"Lawton", "OK", 34.6036, -98.3959, 90381, 73501},
    {"Hays", "KS", 38.8792, -99.3268, 21116, 67601},
    {"Kearney", "NE", 40.6993, -99.0832, 33790, 68847},
    {"Ames", "IA", 42.0308, -93.6319, 66427, 50010},
    {"Dubuque", "IA", 42.5006, -90.6646, 59667, 52001},
    {"Rochester", "MN", 44.0121, -92.4802, 121395, 55901},
    {"Eau Claire", "WI", 44.8113, -91.4985, 69421, 54701},
    {"Marquette", "MI", 46.5436, -87.3954, 20629, 49855},
    {"Traverse City", "MI", 44.7631, -85.6206, 15678, 49684},
    {"Muncie", "IN", 40.1934, -85.3864, 65194, 47302},
    {"Bowling Green", "KY", 36.9685, -86.4808, 72294, 42101},
    {"Tupelo", "MS", 34.2576, -88.7034, 37923, 38801},
    {"Lake Charles", "LA", 30.2266, -93.2174, 84872, 70601},
    {"Odessa", "TX", 31.8457, -102.3676, 114428, 79761},
    {"Grand Junction", "CO", 39.0639, -108.5506, 65560, 81501},
    {"Idaho Falls", "ID", 43.4917, -112.0339, 64818, 83401},
    {"Bend", "OR", 44.0582, -121.3153, 99178, 97701},
};

struct customer {
    const char *first, *last, *gender, *job;
    char street[64];
    int city;
    double lat, lon;
    int zip;
};

struct merchant {
    char name[64];
    int category;
};

/* A fraud event waiting for its day. */
struct pending {
    int64_t time;
    int customer, category;
    double amount;
};

/* One generated event of the current day before formatting. */
struct event {
    int64_t time;
    int customer, category, fraud;
    double amount; /* fraud events carry their amount; legit ones draw it when formatted */
    uint64_t tiebreak;
};

struct fs_gen {
    fs_gen_opts o;
    rng world, days;
    struct customer *cust;
    double *cust_cum; /* cumulative activity weights */
    int ncust;
    struct merchant *merch;
    int nmerch;
    int *cat_merch[FS_GEN_NCATEGORIES]; /* merchant indices per category */
    int cat_nmerch[FS_GEN_NCATEGORIES];
    double cat_cum[FS_GEN_NCATEGORIES], fraud_cat_cum[FS_GEN_NCATEGORIES];
    double hour_cum[24];

    int64_t day; /* start of the day being emitted */
    struct event *ev;
    size_t nev, cap_ev, next_ev;
    struct pending *pend;
    size_t npend, cap_pend;
    double mean_episode;

    /* The row handed out. */
    char cells[FS_TXN_NFIELDS][96];
    const char *values[FS_TXN_NFIELDS];
    size_t lens[FS_TXN_NFIELDS];
    fs_txn txn;
};

const char *fs_gen_category(int i)
{
    return i >= 0 && i < FS_GEN_NCATEGORIES ? categories[i] : NULL;
}

void fs_gen_opts_default(fs_gen_opts *o)
{
    o->seed = 1;
    o->start = 1546300800; /* 2019-01-01 00:00 UTC */
    o->fraud_rate = 0.005;
    o->customers = 1000;
    o->merchants = 700;
}

/* Builds customers and merchants from the world stream. */
static int build_world(fs_gen *g)
{
    rng *r = &g->world;
    for (int i = 0; i < g->ncust; i++) {
        struct customer *c = &g->cust[i];
        int female = rng_below(r, 2) == 0;
        c->gender = female ? "F" : "M";
        c->first = female ? first_female[rng_below(r, COUNT(first_female))]
                          : first_male[rng_below(r, COUNT(first_male))];
        c->last = last_names[rng_below(r, COUNT(last_names))];
        c->job = jobs[rng_below(r, COUNT(jobs))];
        snprintf(c->street, sizeof c->street, "%u %s %s", 1 + rng_below(r, 99999),
                 street_names[rng_below(r, COUNT(street_names))],
                 street_suffix[rng_below(r, COUNT(street_suffix))]);
        /* Small towns and big cities alike, as in the data: uniform over the table. */
        c->city = (int)rng_below(r, COUNT(cities));
        /* Homes scatter a few miles around the town centre. */
        c->lat = cities[c->city].lat + rng_uniform(r, -0.05, 0.05);
        c->lon = cities[c->city].lon + rng_uniform(r, -0.05, 0.05);
        if (c->lat > 89.9)
            c->lat = 89.9;
        c->zip = cities[c->city].zip + (int)rng_below(r, 8);
        /* Activity: some cards are used far more than others. */
        double w = exp(0.6 * rng_normal(r));
        g->cust_cum[i] = (i ? g->cust_cum[i - 1] : 0.0) + w;
    }
    for (int i = 0; i < g->nmerch; i++) {
        struct merchant *m = &g->merch[i];
        /* Every category gets merchants: the first 14 one each, the rest by weight. */
        m->category = i < FS_GEN_NCATEGORIES ? i : pick_cum(r, g->cat_cum, FS_GEN_NCATEGORIES);
        for (int attempt = 0;; attempt++) {
            const char *a = last_names[rng_below(r, COUNT(last_names))];
            const char *b = last_names[rng_below(r, COUNT(last_names))];
            const char *c = last_names[rng_below(r, COUNT(last_names))];
            switch (rng_below(r, 4)) {
            case 0:
                snprintf(m->name, sizeof m->name, "fraud_%s-%s", a, b);
                break;
            case 1:
                snprintf(m->name, sizeof m->name, "fraud_%s, %s and %s", a, b, c);
                break;
            default:
                snprintf(m->name, sizeof m->name, "fraud_%s%s", a,
                         merchant_suffix[rng_below(r, COUNT(merchant_suffix))]);
                break;
            }
            int dup = 0;
            for (int k = 0; k < i && !dup; k++)
                dup = strcmp(g->merch[k].name, m->name) == 0;
            if (!dup)
                break;
            if (attempt > 1000) {
                snprintf(m->name, sizeof m->name, "fraud_%s #%d", a, i);
                break;
            }
        }
        g->cat_nmerch[m->category]++;
    }
    for (int k = 0; k < FS_GEN_NCATEGORIES; k++) {
        g->cat_merch[k] = calloc((size_t)g->cat_nmerch[k], sizeof(int));
        if (g->cat_merch[k] == NULL)
            return -1;
        g->cat_nmerch[k] = 0;
    }
    for (int i = 0; i < g->nmerch; i++) {
        int k = g->merch[i].category;
        g->cat_merch[k][g->cat_nmerch[k]++] = i;
    }
    return 0;
}

fs_gen *fs_gen_new(const fs_gen_opts *opts, char *errstr, size_t errstr_size)
{
    fs_gen_opts o;
    fs_gen_opts_default(&o);
    if (opts != NULL)
        o = *opts;
    if (o.customers == 0)
        o.customers = 1000;
    if (o.merchants == 0)
        o.merchants = 700;
    if (!(o.fraud_rate >= 0.0 && o.fraud_rate <= 0.5)) {
        fs_errf(errstr, errstr_size, "fraud rate %g outside [0, 0.5]", o.fraud_rate);
        return NULL;
    }
    if (o.customers < 1 || o.customers > 100000) {
        fs_errf(errstr, errstr_size, "customers %d outside [1, 100000]", o.customers);
        return NULL;
    }
    if (o.merchants < FS_GEN_NCATEGORIES || o.merchants > 10000) {
        fs_errf(errstr, errstr_size, "merchants %d outside [%d, 10000]", o.merchants,
             FS_GEN_NCATEGORIES);
        return NULL;
    }
    /* Years 1..9999 print as YYYY; keep a margin for the run itself. */
    if (o.start < -62135596800LL || o.start > 253202544000LL) {
        fs_errf(errstr, errstr_size, "start outside the years 1..9990");
        return NULL;
    }
    fs_gen *g = calloc(1, sizeof *g);
    if (g == NULL)
        goto oom;
    g->o = o;
    g->ncust = o.customers;
    g->nmerch = o.merchants;
    g->cust = calloc((size_t)g->ncust, sizeof *g->cust);
    g->cust_cum = calloc((size_t)g->ncust, sizeof *g->cust_cum);
    g->merch = calloc((size_t)g->nmerch, sizeof *g->merch);
    if (g->cust == NULL || g->cust_cum == NULL || g->merch == NULL)
        goto oom;
    double acc = 0, facc = 0;
    for (int k = 0; k < FS_GEN_NCATEGORIES; k++) {
        acc += cat_model[k].weight;
        facc += cat_model[k].fraud_weight;
        g->cat_cum[k] = acc;
        g->fraud_cat_cum[k] = facc;
    }
    acc = 0;
    for (int h = 0; h < 24; h++) {
        acc += hour_weight[h];
        g->hour_cum[h] = acc;
    }
    rng_seed(&g->world, o.seed, 1);
    rng_seed(&g->days, o.seed, 2);
    if (build_world(g) != 0)
        goto oom;
    /* Start at midnight of the start day. */
    int64_t d = o.start / 86400;
    if (o.start % 86400 < 0)
        d--;
    g->day = d * 86400 - 86400; /* advanced before the first use */
    g->mean_episode = 7.5;      /* fraud events per episode: 3..12 */
    return g;
oom:
    fs_errf(errstr, errstr_size, "out of memory");
    fs_gen_free(g);
    return NULL;
}

void fs_gen_free(fs_gen *g)
{
    if (g == NULL)
        return;
    for (int k = 0; k < FS_GEN_NCATEGORIES; k++)
        free(g->cat_merch[k]);
    free(g->cust);
    free(g->cust_cum);
    free(g->merch);
    free(g->ev);
    free(g->pend);
    free(g);
}

static int push_event(fs_gen *g, const struct event *e)
{
    if (g->nev == g->cap_ev) {
        size_t cap = g->cap_ev ? g->cap_ev * 2 : 4096;
        struct event *n = realloc(g->ev, cap * sizeof *n);
        if (n == NULL)
            return -1;
        g->ev = n;
        g->cap_ev = cap;
    }
    g->ev[g->nev++] = *e;
    return 0;
}

static int push_pending(fs_gen *g, const struct pending *p)
{
    if (g->npend == g->cap_pend) {
        size_t cap = g->cap_pend ? g->cap_pend * 2 : 256;
        struct pending *n = realloc(g->pend, cap * sizeof *n);
        if (n == NULL)
            return -1;
        g->pend = n;
        g->cap_pend = cap;
    }
    g->pend[g->npend++] = *p;
    return 0;
}

static int cmp_event(const void *a, const void *b)
{
    const struct event *x = a, *y = b;
    if (x->time != y->time)
        return x->time < y->time ? -1 : 1;
    if (x->tiebreak != y->tiebreak)
        return x->tiebreak < y->tiebreak ? -1 : 1;
    return 0;
}

/* Seconds into a day at an hour drawn from the weights. */
static int64_t draw_time_of_day(rng *r, const double *hour_cum)
{
    int h = pick_cum(r, hour_cum, 24);
    return (int64_t)h * 3600 + rng_below(r, 3600);
}

/* A night time (22:00-03:59) as seconds from the start of a day (may run into the next). */
static int64_t draw_night(rng *r)
{
    return 22 * 3600 + (int64_t)rng_below(r, 6 * 3600);
}

/* Day of week (0 = Monday) and month (0 = January) of a day start. */
static void day_calendar(int64_t day_start, int *wday, int *month)
{
    int64_t days = day_start / 86400;
    *wday = (int)(((days % 7) + 7 + 3) % 7); /* 1970-01-01 was a Thursday */
    /* civil_from_days (H. Hinnant) for the month. */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *month = (int)(mp < 10 ? mp + 2 : mp - 10);
}

/* Generates the next day's events into g->ev, sorted. */
static int next_day(fs_gen *g)
{
    rng *r = &g->days;
    g->day += 86400;
    g->nev = 0;
    g->next_ev = 0;
    int wday, month;
    day_calendar(g->day, &wday, &month);
    double legit_mean = PER_CUSTOMER_DAY * g->ncust * weekday_factor[wday] * month_factor[month];
    int nlegit = rng_poisson(r, legit_mean);
    for (int i = 0; i < nlegit; i++) {
        struct event e = {0};
        e.time = g->day + draw_time_of_day(r, g->hour_cum);
        e.customer = pick_cum(r, g->cust_cum, g->ncust);
        e.category = pick_cum(r, g->cat_cum, FS_GEN_NCATEGORIES);
        e.tiebreak = rng_next(r);
        if (push_event(g, &e) != 0)
            return -1;
    }
    /* New fraud episodes, sized so fraud rows are fraud_rate of all rows. */
    double fr = g->o.fraud_rate;
    double episodes_mean = fr >= 1.0 ? 0 : legit_mean * fr / (1.0 - fr) / g->mean_episode;
    int nep = rng_poisson(r, episodes_mean);
    for (int k = 0; k < nep; k++) {
        int victim = (int)rng_below(r, (uint32_t)g->ncust);
        int64_t begin = g->day + (int64_t)rng_below(r, 86400);
        int n = 3 + (int)rng_below(r, 10);
        for (int j = 0; j < n; j++) {
            struct pending p;
            /* Within ~2 days of the compromise; 85% at night (22:00-03:59). */
            int64_t day0 = g->day + (int64_t)rng_below(r, 2) * 86400;
            int64_t tt = rng_unit(r) < 0.85 ? day0 + draw_night(r)
                                            : day0 + (int64_t)rng_below(r, 86400);
            if (tt < begin)
                tt += 86400;
            p.time = tt;
            p.customer = victim;
            p.category = pick_cum(r, g->fraud_cat_cum, FS_GEN_NCATEGORIES);
            p.amount = rng_uniform(r, cat_model[p.category].fraud_lo,
                                   cat_model[p.category].fraud_hi);
            if (push_pending(g, &p) != 0)
                return -1;
        }
    }
    /* Move the fraud events of this day into the day. */
    size_t keep = 0;
    for (size_t i = 0; i < g->npend; i++) {
        struct pending *p = &g->pend[i];
        if (p->time < g->day + 86400) {
            struct event e = {0};
            e.time = p->time < g->day ? g->day : p->time;
            e.customer = p->customer;
            e.category = p->category;
            e.fraud = 1;
            e.amount = p->amount;
            e.tiebreak = rng_next(r);
            if (push_event(g, &e) != 0)
                return -1;
        } else {
            g->pend[keep++] = *p;
        }
    }
    g->npend = keep;
    qsort(g->ev, g->nev, sizeof *g->ev, cmp_event);
    return 0;
}

/* Civil date and time of an epoch second, for printing. */
static void civil(int64_t t, int *y, int *mo, int *d, int *h, int *mi)
{
    int64_t days = t / 86400, sod = t % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *mo = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*mo <= 2));
    *h = (int)(sod / 3600);
    *mi = (int)(sod / 60 % 60);
}

/* Cells are formatted by hand: printf's float conversion was a third of the run time. */
static void cell_str(fs_gen *g, enum fs_txn_field f, const char *str)
{
    size_t n = strlen(str);
    if (n >= sizeof g->cells[f])
        n = sizeof g->cells[f] - 1;
    memcpy(g->cells[f], str, n);
    g->cells[f][n] = '\0';
    g->values[f] = g->cells[f];
    g->lens[f] = n;
}

/* Writes the decimal digits of v (>= 0) ending at end; returns the first digit. */
static char *put_digits(char *end, uint64_t v, int min_digits)
{
    int n = 0;
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
        n++;
    } while (v != 0 || n < min_digits);
    return end;
}

static void cell_int(fs_gen *g, enum fs_txn_field f, int64_t v)
{
    char tmp[32], *end = tmp + sizeof tmp, *p;
    p = put_digits(end, (uint64_t)(v < 0 ? -v : v), 1);
    if (v < 0)
        *--p = '-';
    size_t n = (size_t)(end - p);
    memcpy(g->cells[f], p, n);
    g->cells[f][n] = '\0';
    g->values[f] = g->cells[f];
    g->lens[f] = n;
}

/* v with exactly `decimals` digits after the point (|v| < 1e12). */
static void cell_fixed(fs_gen *g, enum fs_txn_field f, double v, int decimals)
{
    static const double scale[] = {1, 10, 100, 1e3, 1e4, 1e5, 1e6};
    int neg = v < 0;
    uint64_t u = (uint64_t)((neg ? -v : v) * scale[decimals] + 0.5);
    uint64_t ip = u, fp = 0;
    for (int i = 0; i < decimals; i++)
        ip /= 10;
    fp = u - ip * (uint64_t)scale[decimals];
    char tmp[48], *end = tmp + sizeof tmp, *p = end;
    if (decimals > 0) {
        p = put_digits(p, fp, decimals);
        *--p = '.';
    }
    p = put_digits(p, ip, 1);
    if (neg && u != 0)
        *--p = '-';
    size_t n = (size_t)(end - p);
    memcpy(g->cells[f], p, n);
    g->cells[f][n] = '\0';
    g->values[f] = g->cells[f];
    g->lens[f] = n;
}

static void cell_time(fs_gen *g, int64_t t)
{
    int y, mo, d, h, mi;
    civil(t, &y, &mo, &d, &h, &mi);
    char *c = g->cells[FS_F_TRANSACTION_TIME];
    char tmp[8];
    put_digits(tmp + 4, (uint64_t)y, 4);
    memcpy(c, tmp, 4);
    c[4] = '-';
    c[5] = (char)('0' + mo / 10);
    c[6] = (char)('0' + mo % 10);
    c[7] = '-';
    c[8] = (char)('0' + d / 10);
    c[9] = (char)('0' + d % 10);
    c[10] = ' ';
    c[11] = (char)('0' + h / 10);
    c[12] = (char)('0' + h % 10);
    c[13] = ':';
    c[14] = (char)('0' + mi / 10);
    c[15] = (char)('0' + mi % 10);
    c[16] = '\0';
    g->values[FS_F_TRANSACTION_TIME] = c;
    g->lens[FS_F_TRANSACTION_TIME] = 16;
}

static double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int fs_gen_next(fs_gen *g, const fs_txn **t, const char *const **values, const size_t **lens)
{
    while (g->next_ev >= g->nev)
        if (next_day(g) != 0)
            return -1;
    const struct event *e = &g->ev[g->next_ev++];
    rng *r = &g->days;
    const struct customer *c = &g->cust[e->customer];
    int k = e->category;
    const struct merchant *m = &g->merch[g->cat_merch[k][rng_below(r, (uint32_t)g->cat_nmerch[k])]];
    double amount = e->fraud ? e->amount : exp(cat_model[k].mu + cat_model[k].sigma * rng_normal(r));
    if (amount < 1.0)
        amount = 1.0 + rng_unit(r);
    if (amount > 30000.0)
        amount = 30000.0;
    double mlat = clampd(c->lat + rng_uniform(r, -1.0, 1.0), -90.0, 90.0);
    double mlon = c->lon + rng_uniform(r, -1.0, 1.0);
    if (mlon < -180.0)
        mlon += 360.0;
    if (mlon > 180.0)
        mlon -= 360.0;
    cell_time(g, e->time);
    cell_str(g, FS_F_MERCH, m->name);
    cell_str(g, FS_F_CAT_ID, categories[k]);
    cell_fixed(g, FS_F_AMOUNT, amount, 2);
    cell_str(g, FS_F_NAME_1, c->first);
    cell_str(g, FS_F_NAME_2, c->last);
    cell_str(g, FS_F_GENDER, c->gender);
    cell_str(g, FS_F_STREET, c->street);
    cell_str(g, FS_F_ONE_CITY, cities[c->city].city);
    cell_str(g, FS_F_US_STATE, cities[c->city].state);
    cell_int(g, FS_F_POST_CODE, c->zip);
    cell_fixed(g, FS_F_LAT, c->lat, 4);
    cell_fixed(g, FS_F_LON, c->lon, 4);
    cell_int(g, FS_F_POPULATION_CITY, cities[c->city].population);
    cell_str(g, FS_F_JOBS, c->job);
    cell_fixed(g, FS_F_MERCHANT_LAT, mlat, 6);
    cell_fixed(g, FS_F_MERCHANT_LON, mlon, 6);
    char err[256];
    int bad;
    if (fs_txn_from_strings(&g->txn, g->values, g->lens, NULL, e->fraud ? "1" : "0", &bad, err,
                            sizeof err) != 0)
        return -1; /* cannot happen: every cell above is valid by construction */
    *t = &g->txn;
    if (values != NULL)
        *values = g->values;
    if (lens != NULL)
        *lens = g->lens;
    return 0;
}

/* Appends one CSV cell to line at *o, quoted when it holds a comma, quote or line break.
 * Cells are under 96 bytes, so a quoted cell takes at most 2 * 96 + 2. */
static void put_cell(char *line, size_t *o, const char *s, size_t len)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        memcpy(line + *o, s, len);
        *o += len;
        return;
    }
    line[(*o)++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            line[(*o)++] = '"';
        line[(*o)++] = s[i];
    }
    line[(*o)++] = '"';
}

int fs_gen_write_csv(FILE *out, const fs_gen_opts *o, uint64_t rows, int with_target,
                     char *errstr, size_t errstr_size)
{
    int rc = -1;
    fs_gen *g = fs_gen_new(o, errstr, errstr_size);
    if (g == NULL)
        goto out;
    for (int f = 0; f < FS_TXN_NFIELDS; f++) {
        if (f > 0)
            putc(',', out);
        fputs(fs_txn_field_name((enum fs_txn_field)f), out);
    }
    fputs(with_target ? ",target\n" : "\n", out);
    for (uint64_t i = 0; i < rows; i++) {
        const fs_txn *t;
        const char *const *values;
        const size_t *lens;
        if (fs_gen_next(g, &t, &values, &lens) != 0) {
            fs_errf(errstr, errstr_size, "row %llu: generator failed (out of memory, or past the year 9999)",
                 (unsigned long long)i);
            goto out;
        }
        char line[FS_TXN_NFIELDS * (2 * sizeof g->cells[0] + 3) + 8];
        size_t pos = 0;
        for (int f = 0; f < FS_TXN_NFIELDS; f++) {
            if (f > 0)
                line[pos++] = ',';
            put_cell(line, &pos, values[f], lens[f]);
        }
        if (with_target) {
            line[pos++] = ',';
            line[pos++] = t->target ? '1' : '0';
        }
        line[pos++] = '\n';
        fwrite(line, 1, pos, out);
        if (ferror(out)) {
            fs_errf(errstr, errstr_size, "write error: %s", strerror(errno));
            goto out;
        }
    }
    if (fflush(out) != 0 || ferror(out)) {
        fs_errf(errstr, errstr_size, "write error: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    fs_gen_free(g);
    return rc;
}

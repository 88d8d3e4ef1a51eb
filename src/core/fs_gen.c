/*
 * fs_gen: synthetic transactions that follow the Sparkov simulator's process (see fs_gen.h
 * for what is modelled).
 *
 * Days are generated one at a time. A customer whose episode starts that day gets its fraud
 * rows (that day and the next) and the days that received fraud are blocked for its
 * legitimate purchases; then every customer draws the day's legitimate purchases from its
 * profile. The day's rows are sorted by time and handed out. Each row is formatted once into
 * text cells and then read back through fs_txn_from_strings, so the record handed out is
 * exactly what a reader of the CSV gets.
 */
#include "fs_gen.h"
#include "fs_err.h"
#include "fs_hash.h"
#include "fs_time.h"

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

/* Gamma(shape, 1), Marsaglia and Tsang; shapes below 1 are boosted by U^(1/shape). */
static double rng_gamma(rng *r, double shape)
{
    double boost = 1.0;
    if (shape < 1.0) {
        double u = rng_unit(r);
        boost = u > 0.0 ? exp(log(u) / shape) : 0.0;
        shape += 1.0;
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d), v = 0.0;
    for (;;) {
        double x = rng_normal(r);
        v = 1.0 + c * x;
        if (v <= 0.0)
            continue;
        v = v * v * v;
        double u = rng_unit(r);
        if (u < 1.0 - 0.0331 * x * x * x * x)
            break;
        if (u > 0.0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            break;
    }
    return d * v * boost;
}

/* The first index whose cumulative weight cum[0..n-1] exceeds x (n - 1 if none). */
static int cum_index(const double *cum, int n, double x)
{
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

/* Index drawn from cumulative weights cum[0..n-1] (cum[n-1] = total). */
static int pick_cum(rng *r, const double *cum, int n)
{
    return cum_index(cum, n, rng_unit(r) * cum[n - 1]);
}

/* ---- the world's vocabulary ---- */

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static const char *const categories[FS_GEN_NCATEGORIES] = {
    "gas_transport", "grocery_net",   "grocery_pos",  "misc_net",       "misc_pos",
    "shopping_net",  "shopping_pos",  "entertainment", "food_dining",   "health_fitness",
    "home",          "kids_pets",     "personal_care", "travel",
};

/* ---- customer profiles (the simulator's 12 segments and their fraud twins) ---- */

/* One way of spending: a customer's legitimate purchases, or what a thief does with the
 * card. Categories are in the order of categories[]; amounts are gamma-distributed with the
 * given mean and standard deviation (in dollars), and a draw under $1 is replaced by a
 * uniform one in $1..$10, as the simulator does. */
struct spend {
    int lo, hi;   /* legitimate: purchases per average day, drawn once per customer;
                     fraud: rows per episode, drawn per episode (both inclusive) */
    int am_pct;   /* share of rows before noon, in percent (see pick_row) */
    int weight[FS_GEN_NCATEGORIES];
    float mean[FS_GEN_NCATEGORIES], sd[FS_GEN_NCATEGORIES];
};

#define AMOUNTS(m0, s0, m1, s1, m2, s2, m3, s3, m4, s4, m5, s5, m6, s6, m7, s7, m8, s8, m9, s9,  \
                m10, s10, m11, s11, m12, s12, m13, s13)                                     \
    {m0, m1, m2, m3, m4, m5, m6, m7, m8, m9, m10, m11, m12, m13},                           \
    {                                                                                       \
        s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13                          \
    }

/* Legitimate spending. */
static const struct spend young_urban = {
    0, 6, 20, {200, 60, 75, 80, 100, 125, 150, 120, 120, 100, 85, 125, 100, 55},
    AMOUNTS(60, 15, 40, 20, 70, 20, 50, 150, 50, 150, 50, 300, 50, 300, 50, 50, 30, 50, 50, 50,
            50, 50, 50, 50, 35, 50, 50, 600)};
static const struct spend young_rural = {
    0, 6, 20, {150, 80, 50, 100, 100, 100, 100, 130, 140, 110, 50, 75, 100, 35},
    AMOUNTS(60, 15, 30, 20, 60, 20, 120, 60, 140, 90, 90, 120, 150, 35, 90, 30, 20, 50, 40, 50,
            40, 50, 50, 50, 35, 50, 40, 600)};
static const struct spend adult_female_urban = {
    1, 6, 30, {50, 100, 150, 75, 100, 150, 175, 100, 110, 100, 150, 135, 125, 35},
    AMOUNTS(70, 15, 60, 20, 200, 20, 100, 150, 80, 100, 100, 200, 100, 225, 100, 75, 60, 40,
            60, 50, 60, 50, 60, 50, 55, 50, 60, 600)};
static const struct spend adult_female_rural = {
    1, 6, 30, {225, 50, 150, 75, 100, 110, 150, 90, 100, 90, 150, 135, 125, 35},
    AMOUNTS(60, 15, 50, 20, 100, 20, 60, 150, 50, 150, 50, 300, 50, 250, 50, 50, 30, 50, 50, 50,
            50, 50, 50, 50, 45, 50, 50, 600)};
static const struct spend adult_male_urban = {
    1, 5, 30, {150, 80, 150, 75, 100, 100, 125, 110, 110, 100, 150, 110, 75, 45},
    AMOUNTS(70, 15, 50, 20, 60, 20, 50, 150, 60, 150, 60, 300, 60, 300, 60, 75, 40, 50, 60, 50,
            60, 50, 60, 50, 35, 50, 60, 600)};
static const struct spend adult_male_rural = {
    1, 4, 45, {50, 50, 150, 30, 100, 100, 100, 105, 100, 90, 150, 110, 50, 45},
    AMOUNTS(70, 5, 50, 5, 100, 10, 100, 20, 35, 5, 95, 10, 135, 12, 75, 7, 60, 6, 75, 2, 80, 8,
            50, 5, 75, 5, 500, 50)};
static const struct spend senior_urban = {
    0, 3, 60, {150, 25, 150, 50, 100, 75, 150, 115, 120, 80, 150, 150, 120, 60},
    AMOUNTS(70, 15, 90, 20, 90, 20, 55, 150, 60, 150, 80, 200, 45, 200, 50, 75, 80, 50, 40, 50,
            60, 50, 80, 50, 45, 50, 60, 600)};
static const struct spend senior_rural = {
    1, 4, 50, {225, 15, 150, 100, 65, 125, 110, 120, 90, 125, 150, 150, 120, 60},
    AMOUNTS(60, 15, 50, 20, 130, 20, 60, 150, 50, 150, 50, 150, 50, 150, 50, 50, 50, 50, 50, 50,
            50, 50, 50, 50, 50, 50, 60, 600)};

/* Fraud: the high-value categories at tightly spread, high amounts. */
#define FRAUD_WEIGHTS {100, 25, 300, 155, 25, 300, 100, 20, 10, 5, 5, 10, 15, 15}
#define FRAUD_AMOUNTS(shopping_pos)                                                          \
    AMOUNTS(10, 2, 10, 2, 300, 20, 800, 80, 8, 1, 1000, 100, shopping_pos, 80, 500, 50, 120, 12, \
            20, 2, 250, 25, 20, 2, 20, 2, 10, 1)
static const struct spend fraud_young_urban = {8, 16, 50, FRAUD_WEIGHTS, FRAUD_AMOUNTS(800)};
static const struct spend fraud_young_rural = {5, 19, 40, FRAUD_WEIGHTS, FRAUD_AMOUNTS(1200)};
static const struct spend fraud_adult_male_urban = {7, 12, 50, FRAUD_WEIGHTS,
                                                    FRAUD_AMOUNTS(800)};
static const struct spend fraud_adult_male_rural = {8, 14, 30, FRAUD_WEIGHTS,
                                                    FRAUD_AMOUNTS(800)};
/* The two adult female segments keep the legitimate category mix under fraud. */
static const struct spend fraud_adult_female_urban = {
    2, 16, 60, {50, 10, 150, 75, 100, 150, 175, 100, 110, 100, 150, 135, 125, 35},
    AMOUNTS(10, 2, 12, 2, 350, 20, 800, 80, 8, 1, 1000, 100, 800, 80, 500, 50, 120, 12, 20, 2,
            250, 25, 20, 2, 20, 2, 10, 1)};
static const struct spend fraud_adult_female_rural = {
    7, 16, 50, {95, 10, 200, 75, 100, 200, 200, 90, 100, 90, 150, 135, 125, 35},
    AMOUNTS(10, 2, 8, 2, 350, 20, 800, 80, 800, 80, 1000, 100, 900, 120, 500, 50, 120, 12, 20, 2,
            250, 25, 20, 2, 20, 2, 10, 1)};
static const struct spend fraud_senior_urban = {
    7, 12, 30, {100, 15, 275, 165, 25, 280, 150, 22, 10, 5, 5, 10, 15, 15},
    AMOUNTS(10, 2, 10, 2, 300, 20, 800, 80, 8, 1, 1000, 90, 950, 80, 400, 40, 120, 12, 20, 2,
            250, 25, 20, 2, 20, 2, 10, 1)};
static const struct spend fraud_senior_rural = {
    4, 15, 30, {90, 35, 300, 155, 25, 285, 115, 30, 10, 5, 5, 15, 35, 15},
    AMOUNTS(20, 2, 15, 2, 325, 20, 800, 80, 50, 1, 1000, 100, 825, 80, 600, 50, 120, 12, 20, 2,
            400, 25, 5, 2, 50, 2, 1, 1)};

/* Day-of-week weights, Monday first (the same for a segment's legitimate and fraud rows). */
#define DOW_YOUNG_URBAN {60, 70, 80, 90, 180, 250, 175}
#define DOW_YOUNG_RURAL {80, 80, 80, 80, 200, 250, 150}
#define DOW_WEEKEND_175 {80, 90, 100, 100, 150, 175, 175}
#define DOW_WEEKEND_150 {80, 90, 100, 100, 125, 150, 150}

/* Index = band * 4 + male * 2 + rural; bands are under 25, 25..49 and 50 or over; rural is a
 * home town under 2,500 people. Men and women share a segment's numbers where the simulator
 * does. */
static const struct profile {
    const char *name;
    int dow[7];
    const struct spend *legit, *fraud;
    int share; /* customers per 1000 in this gender and age band (before urban/rural) */
} profiles[FS_GEN_NPROFILES] = {
    {"young_female_urban", DOW_YOUNG_URBAN, &young_urban, &fraud_young_urban, 44},
    {"young_female_rural", DOW_YOUNG_RURAL, &young_rural, &fraud_young_rural, 44},
    {"young_male_urban", DOW_YOUNG_URBAN, &young_urban, &fraud_young_urban, 48},
    {"young_male_rural", DOW_YOUNG_RURAL, &young_rural, &fraud_young_rural, 48},
    {"adult_female_urban", DOW_WEEKEND_175, &adult_female_urban, &fraud_adult_female_urban, 202},
    {"adult_female_rural", DOW_WEEKEND_150, &adult_female_rural, &fraud_adult_female_rural, 202},
    {"adult_male_urban", DOW_WEEKEND_150, &adult_male_urban, &fraud_adult_male_urban, 212},
    {"adult_male_rural", DOW_WEEKEND_150, &adult_male_rural, &fraud_adult_male_rural, 212},
    {"senior_female_urban", DOW_WEEKEND_175, &senior_urban, &fraud_senior_urban, 258},
    {"senior_female_rural", DOW_WEEKEND_175, &senior_rural, &fraud_senior_rural, 258},
    {"senior_male_urban", DOW_WEEKEND_175, &senior_urban, &fraud_senior_urban, 236},
    {"senior_male_rural", DOW_WEEKEND_175, &senior_rural, &fraud_senior_rural, 236},
};

/* Share of customers living in a town under 2,500 people (the Kaggle data's median city
 * population is about 2,500). */
#define RURAL_SHARE 0.5

/* Each customer is compromised once per period with this probability (99 in 101). */
#define EPISODE_PROB (99.0 / 101.0)

/* Season weights by calendar day: the holidays (Nov 30 - Dec 31) busiest, the weeks after
 * them (Jan 1 - Feb 28) quiet, summer (May 24 - Sep 1) busy. */
static int season_weight(int month, int day)
{
    int md = month * 100 + day; /* month 1..12 */
    if (md >= 1130)
        return 200;
    if (md <= 228)
        return 75;
    if (md >= 524 && md <= 901)
        return 125;
    return 100;
}

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
    /* Small towns (under 2,500 people): the rural half of the customers lives here. */
    {"Tekoa", "WA", 47.2263, -117.0734, 778, 99033},
    {"Elk Point", "SD", 42.6833, -96.6834, 1963, 57025},
    {"Wheaton", "MN", 45.8044, -96.4992, 1424, 56296},
    {"Cazenovia", "WI", 43.5222, -90.1990, 318, 53924},
    {"Paint Rock", "AL", 34.6615, -86.3289, 210, 35764},
    {"Hinckley", "IL", 41.7689, -88.6409, 2070, 60520},
    {"Ash Flat", "AR", 36.2234, -91.6085, 1082, 72513},
    {"Colton", "OR", 45.1696, -122.4326, 410, 97017},
    {"Gardiner", "MT", 45.0318, -110.7055, 875, 59030},
    {"Marathon", "TX", 30.2074, -103.2435, 430, 79842},
    {"Lamoni", "IA", 40.6228, -93.9341, 2324, 50140},
    {"Hancock", "MD", 39.6990, -78.1797, 1545, 21750},
    {"Elizabeth", "WV", 39.0634, -81.3954, 823, 26143},
    {"Ridgway", "CO", 38.1528, -107.7562, 1183, 81432},
    {"Eureka", "NV", 39.5127, -115.9606, 610, 89316},
    {"Vernon", "VT", 42.7620, -72.5134, 2206, 5354},
};

struct customer {
    const char *first, *last, *gender, *job;
    char street[64];
    int city, zip, profile;
    double lat, lon;
    int per_day;          /* legitimate purchases on an average day */
    int64_t episode_day;  /* day number of the next compromise, or INT64_MAX */
    int64_t period_end;   /* end (day number) of the period holding episode_day */
    int64_t blocked_day;  /* first day of the last episode */
    unsigned blocked;     /* bit i: day blocked_day + i had fraud (no legitimate rows) */
};

struct merchant {
    char name[64];
    int category;
};

/* One row of a day before formatting. Legitimate and fraud rows carry their amount. */
struct event {
    int64_t time;
    int customer, category, fraud;
    double amount;
    uint64_t tiebreak;
};

struct fs_gen {
    fs_gen_opts o;
    rng world, days;
    struct customer *cust;
    int ncust;
    struct merchant *merch;
    int nmerch;
    int *cat_merch[FS_GEN_NCATEGORIES]; /* merchant indices per category */
    int cat_nmerch[FS_GEN_NCATEGORIES];
    /* Per profile: cumulative category weights (legitimate, fraud) and the mean day weight
     * (day of week x season over a year), which turns per_day into a mean for one day. */
    double legit_cum[FS_GEN_NPROFILES][FS_GEN_NCATEGORIES];
    double fraud_cum[FS_GEN_NPROFILES][FS_GEN_NCATEGORIES];
    double day_norm[FS_GEN_NPROFILES];
    int64_t period; /* days per compromise period (from fraud_rate), 0 = no fraud */

    int64_t day; /* start of the day being emitted (seconds) */
    int last_profile;
    struct event *ev;
    size_t nev, cap_ev, next_ev;
    struct event *pend; /* fraud rows for a later day */
    size_t npend, cap_pend;

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

const char *fs_gen_profile_name(int i)
{
    return i >= 0 && i < FS_GEN_NPROFILES ? profiles[i].name : NULL;
}

int fs_gen_profile(const fs_gen *g)
{
    return g->last_profile;
}

void fs_gen_opts_default(fs_gen_opts *o)
{
    o->seed = 1;
    o->start = 1546300800; /* 2019-01-01 00:00 UTC */
    o->fraud_rate = 0.005;
    o->customers = 1000;
    o->merchants = 700;
}

/* Year, month (1..12) and day of month of a day number (civil_from_days, H. Hinnant). */
static void civil_from_days(int64_t days, int *y, int *month, int *mday)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *mday = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*month <= 2));
}

/* Day of week (0 = Monday), month (1..12) and day of month of a day number. */
static void day_calendar(int64_t days, int *wday, int *month, int *mday)
{
    int y;
    *wday = (int)(((days % 7) + 7 + 3) % 7); /* 1970-01-01 was a Thursday */
    civil_from_days(days, &y, month, mday);
}

/* The weight of a day for a profile: day of week times season. */
static double day_weight(int profile, int64_t days)
{
    int wday, month, mday;
    day_calendar(days, &wday, &month, &mday);
    return (double)profiles[profile].dow[wday] * (double)season_weight(month, mday);
}

/* Hash of a customer's key (name_1|name_2|street|post_code); only places it in build_world's
 * table, the full key is compared there. */
static uint64_t customer_hash(const struct customer *c)
{
    char key[192];
    int n = snprintf(key, sizeof key, "%s|%s|%s|%d", c->first, c->last, c->street, c->zip);
    return fs_hash_bytes(key, n < (int)sizeof key ? (size_t)n : sizeof key - 1);
}

static int same_customer(const struct customer *a, const struct customer *b)
{
    return a->zip == b->zip && strcmp(a->first, b->first) == 0 &&
           strcmp(a->last, b->last) == 0 && strcmp(a->street, b->street) == 0;
}

/* Schedules the customer's next compromise in the period starting at day `from` (or a later
 * one: a period passes without fraud with probability 1 - EPISODE_PROB). */
static void schedule_episode(fs_gen *g, struct customer *c, int64_t from)
{
    rng *r = &g->days;
    if (g->period == 0) {
        c->episode_day = INT64_MAX;
        return;
    }
    while (rng_unit(r) >= EPISODE_PROB)
        from += g->period;
    /* Not in the period's last days, so episodes of one customer never overlap. */
    int64_t span = g->period > 4 ? g->period - 3 : 1;
    c->episode_day = from + (int64_t)rng_below(r, (uint32_t)span);
    c->period_end = from + g->period;
}

/* Builds customers and merchants from the world stream. */
static int build_world(fs_gen *g)
{
    int rc = -1;
    rng *r = &g->world;
    int nurban = 0, nrural = 0;
    int urban[COUNT(cities)], rural[COUNT(cities)];
    for (int i = 0; i < COUNT(cities); i++) {
        if (cities[i].population < 2500)
            rural[nrural++] = i;
        else
            urban[nurban++] = i;
    }
    double band_cum[6], acc = 0;
    for (int k = 0; k < 6; k++) {
        acc += profiles[2 * k].share; /* gender x band, in profile order */
        band_cum[k] = acc;
    }
    size_t nslots = 1;
    while (nslots < 2 * (size_t)g->ncust)
        nslots *= 2;
    int *slot = malloc(nslots * sizeof *slot);
    if (slot == NULL)
        goto out;
    for (size_t s = 0; s < nslots; s++)
        slot[s] = -1;
    for (int i = 0; i < g->ncust; i++) {
        struct customer *c = &g->cust[i];
        int gb = pick_cum(r, band_cum, 6); /* band * 2 + male */
        int is_rural = rng_unit(r) < RURAL_SHARE;
        c->profile = (gb / 2) * 4 + (gb % 2) * 2 + is_rural;
        int male = gb % 2;
        c->gender = male ? "M" : "F";
        c->first = male ? first_male[rng_below(r, COUNT(first_male))]
                        : first_female[rng_below(r, COUNT(first_female))];
        c->last = last_names[rng_below(r, COUNT(last_names))];
        c->job = jobs[rng_below(r, COUNT(jobs))];
        c->city = is_rural ? rural[rng_below(r, (uint32_t)nrural)]
                           : urban[rng_below(r, (uint32_t)nurban)];
        /* Homes scatter a few miles around the town centre. */
        c->lat = cities[c->city].lat + rng_uniform(r, -0.05, 0.05);
        c->lon = cities[c->city].lon + rng_uniform(r, -0.05, 0.05);
        if (c->lat > 89.9)
            c->lat = 89.9;
        c->zip = cities[c->city].zip + (int)rng_below(r, 8);
        /* A new street until the key name_1|name_2|street|post_code is unused. */
        size_t s = 0;
        for (;;) {
            snprintf(c->street, sizeof c->street, "%u %s %s", 1 + rng_below(r, 99999),
                     street_names[rng_below(r, COUNT(street_names))],
                     street_suffix[rng_below(r, COUNT(street_suffix))]);
            s = (size_t)customer_hash(c) & (nslots - 1);
            int dup = 0;
            while (slot[s] >= 0 && !dup) {
                dup = same_customer(&g->cust[slot[s]], c);
                if (!dup)
                    s = (s + 1) & (nslots - 1);
            }
            if (!dup)
                break;
        }
        slot[s] = i;
        const struct spend *sp = profiles[c->profile].legit;
        c->per_day = sp->lo + (int)rng_below(r, (uint32_t)(sp->hi - sp->lo + 1));
        c->blocked = 0;
    }
    for (int i = 0; i < g->nmerch; i++) {
        struct merchant *m = &g->merch[i];
        /* Every category gets merchants: the first 14 one each, the rest evenly. */
        m->category = i < FS_GEN_NCATEGORIES ? i : (int)rng_below(r, FS_GEN_NCATEGORIES);
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
            goto out;
        g->cat_nmerch[k] = 0;
    }
    for (int i = 0; i < g->nmerch; i++) {
        int k = g->merch[i].category;
        g->cat_merch[k][g->cat_nmerch[k]++] = i;
    }
    rc = 0;
out:
    free(slot);
    return rc;
}

/* Days per compromise period so that fraud rows are about fraud_rate of all rows: a period
 * holds per_day * (period - blocked days) legitimate rows and, with EPISODE_PROB, one
 * episode of (lo + hi) / 2 fraud rows over about two blocked days. */
static int64_t compromise_period(const fs_gen *g)
{
    double fr = g->o.fraud_rate;
    if (fr <= 0.0)
        return 0;
    double per_day = 0, per_episode = 0;
    for (int i = 0; i < g->ncust; i++) {
        const struct spend *f = profiles[g->cust[i].profile].fraud;
        per_day += g->cust[i].per_day;
        per_episode += 0.5 * (f->lo + f->hi);
    }
    per_day /= g->ncust;
    per_episode = EPISODE_PROB * per_episode / g->ncust;
    if (per_day < 0.01)
        per_day = 0.01;
    double p = 2.0 * EPISODE_PROB + per_episode * (1.0 - fr) / (fr * per_day);
    if (p < 5.0)
        p = 5.0;
    if (p > 1e6)
        p = 1e6;
    return (int64_t)(p + 0.5);
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
    g->last_profile = -1;
    g->cust = calloc((size_t)g->ncust, sizeof *g->cust);
    g->merch = calloc((size_t)g->nmerch, sizeof *g->merch);
    if (g->cust == NULL || g->merch == NULL)
        goto oom;
    for (int p = 0; p < FS_GEN_NPROFILES; p++) {
        double acc = 0, facc = 0;
        for (int k = 0; k < FS_GEN_NCATEGORIES; k++) {
            acc += profiles[p].legit->weight[k];
            facc += profiles[p].fraud->weight[k];
            g->legit_cum[p][k] = acc;
            g->fraud_cum[p][k] = facc;
        }
        /* Mean day weight over 2019 (any common year gives nearly the same). */
        double sum = 0;
        for (int64_t d = 17897; d < 17897 + 365; d++)
            sum += day_weight(p, d);
        g->day_norm[p] = sum / 365.0;
    }
    rng_seed(&g->world, o.seed, 1);
    rng_seed(&g->days, o.seed, 2);
    if (build_world(g) != 0)
        goto oom;
    /* Start at midnight of the start day. */
    int64_t d = fs_day_of(o.start);
    g->day = d * 86400 - 86400; /* advanced before the first use */
    g->period = compromise_period(g);
    for (int i = 0; i < g->ncust; i++)
        schedule_episode(g, &g->cust[i], d);
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
    free(g->merch);
    free(g->ev);
    free(g->pend);
    free(g);
}

static int push(struct event **v, size_t *n, size_t *cap, const struct event *e)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 1024;
        struct event *nv = realloc(*v, ncap * sizeof *nv);
        if (nv == NULL)
            return -1;
        *v = nv;
        *cap = ncap;
    }
    (*v)[(*n)++] = *e;
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

/* Gamma amount with the spend's mean and deviation for category k; under $1 becomes a
 * uniform $1..$10, as in the simulator. */
static double draw_amount(rng *r, const struct spend *sp, int k)
{
    double mean = sp->mean[k], sd = sp->sd[k];
    double shape = mean * mean / (sd * sd), scale = sd * sd / mean;
    double a = scale * rng_gamma(r, shape);
    if (a < 1.0)
        a = rng_uniform(r, 1.0, 10.0);
    if (a > 30000.0)
        a = 30000.0;
    return a;
}

/* Category, time of day and amount of one row. One uniform number picks both the category
 * (by cumulative weight) and the half of the day (before noon if it falls under am_pct), as
 * in the simulator, so a profile's first categories in table order are morning purchases and
 * its last ones afternoon and evening purchases. Fraud rows move to the night (00-03 or
 * 22-23) four times in five. */
static void pick_row(rng *r, const struct spend *sp, const double *cum, int fraud,
                     struct event *e, int64_t day_start)
{
    double u = rng_unit(r);
    int k = cum_index(cum, FS_GEN_NCATEGORIES, u * cum[FS_GEN_NCATEGORIES - 1]);
    int am = u * 100.0 < sp->am_pct;
    int lo = am ? 0 : 12, n = 12;
    if (fraud && rng_below(r, 100) >= 20) {
        lo = am ? 0 : 22;
        n = am ? 4 : 2;
    }
    int hour = lo + (int)rng_below(r, (uint32_t)n);
    e->category = k;
    e->time = day_start + hour * 3600 + (int64_t)rng_below(r, 3600);
    e->amount = draw_amount(r, sp, k);
    e->fraud = fraud;
}

/* The compromise of customer ci starting on day number dn: lo..hi fraud rows over that day
 * and the next (by their day weights); the days that get fraud are blocked for the
 * customer's legitimate purchases. */
static int start_episode(fs_gen *g, int ci, int64_t dn)
{
    rng *r = &g->days;
    struct customer *c = &g->cust[ci];
    const struct profile *p = &profiles[c->profile];
    const struct spend *f = p->fraud;
    int n = f->lo + (int)rng_below(r, (uint32_t)(f->hi - f->lo + 1));
    double w0 = day_weight(c->profile, dn), w1 = day_weight(c->profile, dn + 1);
    c->blocked_day = dn;
    c->blocked = 0;
    for (int j = 0; j < n; j++) {
        int second = rng_unit(r) * (w0 + w1) >= w0;
        struct event e = {0};
        e.customer = ci;
        pick_row(r, f, g->fraud_cum[c->profile], 1, &e, (dn + second) * 86400);
        e.tiebreak = rng_next(r);
        c->blocked |= 1u << second;
        if (push(&g->pend, &g->npend, &g->cap_pend, &e) != 0)
            return -1;
    }
    schedule_episode(g, c, c->period_end);
    return 0;
}

/* Generates the next day's rows into g->ev, sorted. */
static int next_day(fs_gen *g)
{
    rng *r = &g->days;
    g->day += 86400;
    g->nev = 0;
    g->next_ev = 0;
    int64_t dn = g->day / 86400;
    for (int i = 0; i < g->ncust; i++)
        if (g->cust[i].episode_day == dn && start_episode(g, i, dn) != 0)
            return -1;
    double w[FS_GEN_NPROFILES]; /* the day's weight per profile, once per day */
    for (int p = 0; p < FS_GEN_NPROFILES; p++)
        w[p] = day_weight(p, dn);
    for (int i = 0; i < g->ncust; i++) {
        struct customer *c = &g->cust[i];
        if (c->per_day == 0)
            continue;
        double mean = c->per_day * w[c->profile] / g->day_norm[c->profile];
        int n = rng_poisson(r, mean);
        int64_t off = dn - c->blocked_day;
        if (c->blocked != 0 && off >= 0 && off < 2 && (c->blocked >> off & 1u))
            continue; /* the thief's days: the customer's own purchases are not recorded */
        for (int j = 0; j < n; j++) {
            struct event e = {0};
            e.customer = i;
            pick_row(r, profiles[c->profile].legit, g->legit_cum[c->profile], 0, &e, g->day);
            e.tiebreak = rng_next(r);
            if (push(&g->ev, &g->nev, &g->cap_ev, &e) != 0)
                return -1;
        }
    }
    /* Move the fraud rows of this day into the day. */
    size_t keep = 0;
    for (size_t i = 0; i < g->npend; i++) {
        if (g->pend[i].time < g->day + 86400) {
            if (push(&g->ev, &g->nev, &g->cap_ev, &g->pend[i]) != 0)
                return -1;
        } else {
            g->pend[keep++] = g->pend[i];
        }
    }
    g->npend = keep;
    qsort(g->ev, g->nev, sizeof *g->ev, cmp_event);
    return 0;
}

/* Civil date and time of an epoch second, for printing. */
static void civil(int64_t t, int *y, int *mo, int *d, int *h, int *mi)
{
    int64_t sod = fs_second_of_day(t);
    civil_from_days(fs_day_of(t), y, mo, d);
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
    double amount = e->amount;
    g->last_profile = c->profile;
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

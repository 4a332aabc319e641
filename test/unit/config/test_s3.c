/*
 * storage.storageDriver (zot's S3 keys) parsed into zn_config_s3_t: defaults, trimming,
 * distribution's unimplemented parameters as warnings, and each error naming file and key.
 */
#include "test/unit/config/helpers.h"

#define DRV(x) "{\"storage\":{\"rootDirectory\":\"/r\",\"storageDriver\":{" x "}}}"
#define KEYS "\"accesskey\":\"AK\",\"secretkey\":\"SK\""

static void test_s3_full(void **state)
{
    zn_config_t cfg;
    warns_t w;
    parse_ok(DRV("\"name\":\"s3\",\"region\":\"us-east-1\",\"bucket\":\"zot-storage\",\"regionendpoint\":"
                 "\"http://127.0.0.1:9000\",\"rootdirectory\":\"/zot/\",\"Secure\":false,\"skipverify\":true,"
                 "\"forcepathstyle\":true,\"chunksize\":8388608," KEYS),
             &cfg, &w);
    assert_int_equal(w.n, 0);
    zn_config_s3_t *s3 = cfg.storage.driver;
    assert_non_null(s3);
    assert_string_equal(s3->name, "s3");
    assert_string_equal(s3->region, "us-east-1");
    assert_string_equal(s3->bucket, "zot-storage");
    assert_string_equal(s3->regionendpoint, "http://127.0.0.1:9000");
    assert_string_equal(s3->rootdirectory, "zot");
    assert_string_equal(s3->accesskey, "AK");
    assert_string_equal(s3->secretkey, "SK");
    assert_false(s3->secure);
    assert_true(s3->skipverify);
    assert_true(s3->forcepathstyle);
    assert_int_equal(s3->chunksize, 8u << 20);
    zn_config_release(&cfg);
}

static void test_s3_defaults(void **state)
{
    zn_config_t cfg;
    warns_t w;
    parse_ok(DRV("\"name\":\"s3\",\"region\":\"eu-west-1\",\"bucket\":\"b12\",\"rootdirectory\":\"/\"," KEYS), &cfg, &w);
    zn_config_s3_t *s3 = cfg.storage.driver;
    assert_true(s3->secure);
    assert_false(s3->forcepathstyle);
    assert_null(s3->regionendpoint);
    assert_null(s3->rootdirectory); /* "/" is the bucket's top */
    assert_int_equal(s3->chunksize, 16u << 20);
    zn_config_release(&cfg);
    parse_ok("{" ROOT "}", &cfg, &w);
    assert_null(cfg.storage.driver);
    zn_config_release(&cfg);
}

static void test_s3_warnings(void **state)
{
    expect_one_warning(DRV("\"name\":\"s3\",\"region\":\"us-east-1\",\"bucket\":\"bkt\",\"storageclass\":\"STANDARD\"," KEYS),
                       "config.json: storage.storageDriver.storageclass: not implemented by zinc, ignored");
}

static void test_s3_errors(void **state)
{
    expect_error(DRV("\"region\":\"us-east-1\",\"bucket\":\"bkt\"," KEYS),
                 "config.json: storage.storageDriver.name: required (\"s3\")");
    expect_error(DRV("\"name\":\"gcs\",\"region\":\"us-east-1\",\"bucket\":\"bkt\"," KEYS),
                 "config.json: storage.storageDriver.name: unsupported driver \"gcs\" (zinc has s3)");
    expect_error(DRV("\"name\":\"s3\",\"bucket\":\"bkt\"," KEYS), "config.json: storage.storageDriver.region: required");
    expect_error(DRV("\"name\":\"s3\",\"region\":\"US East\",\"bucket\":\"bkt\"," KEYS),
                 "config.json: storage.storageDriver.region: \"US East\": lower-case letters, digits and '-' only");
    expect_error(DRV("\"name\":\"s3\",\"region\":\"us-east-1\"," KEYS), "config.json: storage.storageDriver.bucket: required");
    expect_error(DRV("\"name\":\"s3\",\"region\":\"us-east-1\",\"bucket\":\"ab\"," KEYS),
                 "config.json: storage.storageDriver.bucket: \"ab\": 3 to 63 characters");
    expect_error(DRV("\"name\":\"s3\",\"region\":\"us-east-1\",\"bucket\":\"My_Bucket\"," KEYS),
                 "config.json: storage.storageDriver.bucket: \"My_Bucket\": lower-case letters, digits, '.' and '-' only");
    expect_error(DRV("\"name\":\"s3\",\"region\":\"us-east-1\",\"bucket\":\"bkt\",\"accesskey\":\"AK\""),
                 "config.json: storage.storageDriver.accesskey: accesskey and secretkey are both required (zinc reads "
                 "no IAM, environment or instance credentials)");
    expect_error(DRV("\"name\":\"s3\",\"region\":\"us-east-1\",\"bucket\":\"bkt\",\"regionendpoint\":\"http://h/x\"," KEYS),
                 "config.json: storage.storageDriver.regionendpoint: \"http://h/x\": expected [http(s)://]host[:port]");
    expect_error(DRV("\"name\":\"s3\",\"region\":\"us-east-1\",\"bucket\":\"bkt\",\"rootdirectory\":\"a//b\"," KEYS),
                 "config.json: storage.storageDriver.rootdirectory: \"a//b\": empty path component or longer than 512");
    expect_error(DRV("\"name\":\"s3\",\"region\":\"us-east-1\",\"bucket\":\"bkt\",\"chunksize\":1024," KEYS),
                 "config.json: storage.storageDriver.chunksize: expected integer 5242880-67108864");
    expect_error(DRV("\"name\":\"s3\",\"region\":\"us-east-1\",\"bucket\":\"bkt\",\"secure\":\"maybe\"," KEYS),
                 "config.json: storage.storageDriver.secure: expected boolean");
    expect_error(DRV("\"name\":\"s3\",\"region\":\"us-east-1\",\"bucket\":\"bkt\",\"bukket\":\"x\"," KEYS),
                 "config.json: storage.storageDriver.bukket: unknown key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3_full),
        cmocka_unit_test(test_s3_defaults),
        cmocka_unit_test(test_s3_warnings),
        cmocka_unit_test(test_s3_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

// The test runner: doctest's own main, plus one plain summary line at the very
// end, "N passed, N failed" (test cases), which CI logs and people both read.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

namespace {
int g_cases = 0, g_failed = 0;

struct Summary : doctest::IReporter {
    explicit Summary(const doctest::ContextOptions&) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats& s) override {
        g_cases = int(s.numTestCasesPassingFilters);
        g_failed = int(s.numTestCasesFailed);
    }
    void test_case_start(const doctest::TestCaseData&) override {}
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};
REGISTER_LISTENER("summary", 1, Summary);
}  // namespace

int main(int argc, char** argv) {
    doctest::Context ctx(argc, argv);
    int rc = ctx.run();
    if (ctx.shouldExit()) return rc;
    std::printf("%d passed, %d failed\n", g_cases - g_failed, g_failed);
    return rc != 0 || g_failed != 0 ? 1 : 0;
}

# frozen_string_literal: true

require_relative "helper"
require_relative "support/site_harness"
require "uri"

# The website as a reader sees it: built, served by Uma, opened in headless
# Chromium at a desktop's and a phone's width.
class SiteTest < Minitest::Test
  PAGES = Site::Page.all.freeze
  API_PAGES = %w[/api/index.html /api/UringMachine.html /api/UringMachine/IO.html
                 /api/UringMachine/FiberScheduler.html /api/Uma.html].freeze

  attr_reader :page

  def test_every_public_method_has_a_doc_comment_with_an_example
    api = Site::API.new
    assert_equal [], api.undocumented
    documented, total = api.coverage
    assert_operator total, :>=, 120
    assert_equal total, documented
  end

  def test_the_build_fails_on_a_method_without_an_example
    Dir.mktmpdir do |dir|
      File.write(File.join(dir, "extra.rb"), <<~RUBY)
        class UringMachine
          # Documented, but with no example.
          def without_example; end

          def without_comment; end
        end
      RUBY
      api = Site::API.new(sources: Site::API::SOURCES + [File.join(dir, "extra.rb")])
      assert_equal %w[UringMachine#without_comment UringMachine#without_example], api.undocumented.sort
      error = assert_raises(Site::BuildError) { api.write(dir) }
      assert_match(/UringMachine#without_example/, error.message)
    end
  end

  def test_the_build_fails_on_a_link_to_an_unknown_method
    markdown = Site::Markdown.new(Site::API.new)
    assert_match %r{href="/api/UringMachine.html#read-instance_method"}, markdown.render("[[UringMachine#read]]", "x.md")
    assert_raises(Site::BuildError) { markdown.render("[[UringMachine#no_such_method]]", "x.md") }
  end

  def test_the_build_writes_the_pages_assets_and_cname
    out = SiteHarness.out
    # YARD sets the default encodings for its run; the build puts them back
    # (the other tests of this process write binary data to IOs).
    before, after = SiteHarness.encodings
    assert_equal before, after
    PAGES.each { |p| assert File.file?(File.join(out, p.output_path)), p.output_path }
    assert_equal "uringmachine.dev\n", File.read(File.join(out, "CNAME"))
    assert_equal "\x89PNG".b, File.binread(File.join(out, "favicon.png"), 4)
    assert_equal [0, 1, 1].pack("v3"), File.binread(File.join(out, "favicon.ico"), 6)
    assert File.file?(File.join(out, "api", "UringMachine.html"))
  end

  # Title, sidebar, highlighted code, images and console, page by page.
  def test_every_page_renders_at_desktop_width
    in_browser do
      problems = PAGES.flat_map { |p| check_page(p) }
      problems += API_PAGES.flat_map do |path|
        visit(path).map { "#{path}: console: #{_1}" } + broken_images.map { "#{path}: broken image #{_1}" }
      end
      assert_empty problems
    end
    # The server and the browser are gone and reaped.
    assert_raises(Errno::ECHILD) { Process.wait(-1, Process::WNOHANG) }
  end

  def test_no_broken_internal_link_or_anchor
    links = PAGES.flat_map { |p| internal_links(File.read(File.join(SiteHarness.out, p.output_path)), p.url) }.uniq
    assert_operator links.size, :>, 100
    broken = links.reject { |link| link_ok?(link) }
    assert_empty broken
  end

  # At a phone's width nothing scrolls sideways, and the sidebar folds away
  # behind the Contents button.
  def test_pages_fit_a_phone_screen
    in_browser do
      page.set_viewport(width: 390, height: 844, scale_factor: 2, mobile: true)
      wide = PAGES.select do |p|
        visit(p.url)
        page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
      end
      assert_empty wide.map(&:url)

      visit("/")
      assert_equal "none", page.evaluate("getComputedStyle(document.querySelector('.sidebar')).display")
      page.at_css("label.menu-button").click
      assert_equal "block", page.evaluate("getComputedStyle(document.querySelector('.sidebar')).display")
      shot = File.join(ENV.fetch("SITE_SCREENSHOTS", SiteHarness.out), "home-phone.png")
      page.screenshot(path: shot)
      assert_operator File.size(shot), :>, 10_000
    end
  end

  private

  # Runs the block with the site served and a browser page open (@page).
  def in_browser
    SiteHarness.session do |url, browser|
      @url = url
      @page = browser.page
      @page.set_viewport(width: 1280, height: 900)
      @errors = listen_for_errors
      yield
    end
  end

  # Opens the path; returns the console errors and exceptions it caused.
  def visit(path)
    @errors.clear
    page.go_to("#{@url}#{path}")
    @errors.dup
  end

  def listen_for_errors
    errors = []
    page.on("Runtime.exceptionThrown") { |params| errors << params.dig("exceptionDetails", "exception", "description").to_s }
    page.on("Runtime.consoleAPICalled") { |params| errors << params["args"].map { _1["value"] }.join(" ") if params["type"] == "error" }
    page.on("Log.entryAdded") { |params| errors << "#{params.dig('entry', 'text')} #{params.dig('entry', 'url')}" if params.dig("entry", "level") == "error" }
    errors
  end

  # What the checks need from the open page, in one round trip.
  FACTS = <<~JS
    (() => {
      const text = el => el ? el.textContent : null;
      return {
        title: document.title,
        h1: text(document.querySelector("main h1")),
        sidebar: Array.from(document.querySelectorAll("nav.sidebar a")).map(a => a.getAttribute("href")),
        current: (document.querySelector("nav.sidebar a.current") || { getAttribute: () => null }).getAttribute("href"),
        pager: document.querySelectorAll("nav.pager a").length,
        brokenImages: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
        rubyBlocks: Array.from(document.querySelectorAll("div.language-ruby pre.highlight code")).map(code => {
          const token = code.querySelector("span.nf, span.k, span.nb");
          return token && getComputedStyle(token).color !== getComputedStyle(code).color ? "ok" : code.textContent.slice(0, 40);
        })
      };
    })()
  JS

  def check_page(site_page)
    path = site_page.url
    problems = visit(path).map { "#{path}: console: #{_1}" }
    facts = page.evaluate(FACTS)
    expected_title = site_page.home? ? "UringMachine: Ruby on io_uring" : "#{site_page.title} · UringMachine"
    problems << "#{path}: title #{facts['title'].inspect}" unless facts["title"] == expected_title
    problems << "#{path}: h1 #{facts['h1'].inspect}" unless facts["h1"] == site_page.title
    problems << "#{path}: sidebar" unless PAGES.map(&:url).all? { facts["sidebar"].include?(_1) }
    problems << "#{path}: current page not marked" unless facts["current"] == path
    problems << "#{path}: previous/next" unless facts["pager"] == [site_page.prev, site_page.next].compact.size
    problems.concat(facts["brokenImages"].map { "#{path}: broken image #{_1}" })
    problems.concat(unhighlighted(site_page, facts["rubyBlocks"]).map { "#{path}: code not highlighted: #{_1}" })
    problems
  end

  def broken_images
    page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
  end

  # Ruby blocks with no coloured token (Rouge wraps tokens in spans; the
  # highlight stylesheet must colour them), or fewer than the source has.
  def unhighlighted(site_page, found)
    blocks = site_page.markdown.scan(/^```ruby\n/).size
    bad = found.reject { _1 == "ok" }
    bad << "#{blocks} Ruby blocks in the source, #{found.size} on the page" unless found.size == blocks
    bad
  end

  # Links and image sources of a page that stay on the site, as absolute paths.
  def internal_links(html, base)
    html.scan(/(?:href|src)="([^"]+)"/).flatten.filter_map do |ref|
      uri = URI.join("http://site#{base}", CGI.unescapeHTML(ref))
      next unless uri.host == "site"

      uri.path + (uri.fragment ? "##{uri.fragment}" : "")
    end
  end

  # The link's file exists in the build, and so does the element its
  # fragment names.
  def link_ok?(link)
    path, fragment = link.split("#", 2)
    file = File.join(SiteHarness.out, path)
    file = File.join(file, "index.html") if File.directory?(file)
    return false unless File.file?(file)
    return true unless fragment

    id = URI.decode_www_form_component(fragment)
    html = File.read(file)
    html.include?(%(id="#{id}")) || html.include?(%(name="#{id}"))
  end
end

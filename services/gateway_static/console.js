/* The billing-mesh live console (GET /, console.html): plain script, no build step.
 *
 *   registry      GET /services every 2 s; call rate, error share and mean latency
 *                 from the difference between polls (over the last 10 s)
 *   revenue       EventSource /analytics/stream ("windows" events, one a second;
 *                 "unavailable" while analytics does not answer): the open
 *                 window's revenue (0 while it holds no bill) plotted with smoothie.js
 *   latest bills  GET /bills (its last page) at start, then EventSource
 *                 /events/stream ("bill_created" events; "bill_cancelled" strikes
 *                 its bill through)
 *   top 5         GET /analytics/customers and /analytics/products every 2 s
 *
 * Data reaches the page only through textContent (never innerHTML). Money stays
 * the server's text; the one float is the chart's y value. A computed total
 * (GET /bills answers no total) is summed exactly in cents, as BigInt.
 *
 * The token: `make run` prints the console's address with one after '#token='.
 * It is kept for this tab (sessionStorage) and taken out of the address bar;
 * each request carries it as 'Authorization: Bearer', each stream as
 * ?access_token= (an EventSource cannot send a header). Without one, the
 * panels say the gateway asks for a token.
 *
 * For tests: <body data-state="loaded"> once the first round of requests has
 * answered (or failed); #revenue carries data-windows-events (every event
 * received) and data-points (points plotted); #bills-panel carries
 * data-bill-events; each bill row is <tr data-bill-id="ID">.
 */
(function () {
  'use strict';

  var POLL_MS = 2000;
  var BILLS_KEPT = 10;
  var TOP = 5;
  var WINDOWS_SHOWN = 5;
  var RESTART_MS = 3000;  // a stream the server refused is opened again after this
  var RATE_WINDOW_MS = 10000;  // the registry's rates are over this long

  function $(id) { return document.getElementById(id); }

  // the token: from the address (#token=...) once, then from this tab's storage
  var TOKEN = (function () {
    var found = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
    if (found) {
      var token = decodeURIComponent(found[1]);
      try { window.sessionStorage.setItem('billing-mesh-token', token); } catch (e) { /* private mode */ }
      window.history.replaceState(null, '', window.location.pathname + window.location.search);
      return token;
    }
    try { return window.sessionStorage.getItem('billing-mesh-token') || ''; } catch (e) { return ''; }
  })();

  function withToken(path) {
    if (!TOKEN) return path;
    return path + (path.indexOf('?') < 0 ? '?' : '&') + 'access_token=' + encodeURIComponent(TOKEN);
  }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function cell(row, text, className) {
    var td = el('td', text, className);
    row.appendChild(td);
    return td;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // says what failed in a panel's heading, and greys the panel's figures
  // (the last ones it had) until its next answer
  function problem(id, text) {
    var node = $(id);
    node.textContent = text || '';
    node.closest('.panel').classList.toggle('stale', !!text);
  }

  // JSON from the gateway; an answer other than 2xx rejects with its status and error code
  function getJSON(path) {
    var headers = {Accept: 'application/json'};
    if (TOKEN) headers.Authorization = 'Bearer ' + TOKEN;
    return fetch(path, {headers: headers, cache: 'no-store'})
      .catch(function () { throw new Error('the gateway does not answer'); })
      .then(function (answer) {
        if (answer.ok) return answer.json();
        return answer.json().catch(function () { return {}; }).then(function (body) {
          if (answer.status === 401 || answer.status === 403) {
            throw new Error('HTTP ' + answer.status + ': open the console with the link ' +
                            '`make run` printed (it carries a token)');
          }
          throw new Error('HTTP ' + answer.status + (body && body.error ? ' ' + body.error : ''));
        });
      });
  }

  // money: "123.45" <-> cents as BigInt, exact ------------------------------

  var MONEY = /^(-?)(\d+)(?:\.(\d{1,2}))?$/;

  function cents(text) {
    var parts = MONEY.exec(String(text));
    if (!parts) return null;
    var value = BigInt(parts[2]) * BigInt(100) + BigInt((parts[3] || '0').padEnd(2, '0'));
    return parts[1] ? -value : value;
  }

  function moneyText(value) {
    var negative = value < BigInt(0);
    var digits = (negative ? -value : value).toString().padStart(3, '0');
    return (negative ? '-' : '') + digits.slice(0, -2) + '.' + digits.slice(-2);
  }

  function billTotal(items) {
    var sum = BigInt(0);
    for (var i = 0; i < (items || []).length; i++) {
      var price = cents(items[i].unit_price);
      if (price === null || !Number.isInteger(items[i].quantity)) return '?';
      sum += price * BigInt(items[i].quantity);
    }
    return moneyText(sum);
  }

  function byRevenue(idField) {
    return function (a, b) {
      var x = cents(a.revenue), y = cents(b.revenue);
      if (x !== null && y !== null && x !== y) return x > y ? -1 : 1;
      return a[idField] - b[idField];
    };
  }

  // times -----------------------------------------------------------------

  function two(n) { return n < 10 ? '0' + n : String(n); }

  function clock(date) {
    return two(date.getHours()) + ':' + two(date.getMinutes()) + ':' + two(date.getSeconds());
  }

  var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

  // an ISO 8601 time as local HH:MM:SS, with the day unless it is today
  function when(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) return String(iso || '');
    if (date.toDateString() === new Date().toDateString()) return clock(date);
    var day = date.getDate() + ' ' + MONTHS[date.getMonth()];
    if (date.getFullYear() !== new Date().getFullYear()) day += ' ' + date.getFullYear();
    return day + ' ' + clock(date);
  }

  function uptime(seconds) {
    var s = Math.max(0, Math.floor(Number(seconds) || 0));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + two(s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + two(Math.floor(s / 60) % 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor(s / 3600) % 24 + 'h';
  }

  // streams ---------------------------------------------------------------

  // the header's indicator of a stream; the panel it feeds is greyed while it is away
  function streamState(id, state, panel) {
    var node = $(id);
    node.dataset.state = state;
    node.querySelector('b').textContent = state;
    $(panel).classList.toggle('away', state !== 'live');
  }

  // Follows a server-sent event stream. EventSource reconnects by itself after a
  // dropped connection; an answer that is not a stream (a 503 while a service
  // is down) ends it for good, so a new one is opened after RESTART_MS.
  function follow(path, indicator, panel, handlers, onOpen) {
    var opened = false;

    function connect() {
      var source = new EventSource(withToken(path));
      source.onopen = function () {
        streamState(indicator, 'live', panel);
        if (onOpen) onOpen(opened);
        opened = true;
      };
      source.onerror = function () {
        streamState(indicator, 'reconnecting', panel);
        if (source.readyState === EventSource.CLOSED) {
          source.close();
          setTimeout(connect, RESTART_MS);
        }
      };
      Object.keys(handlers).forEach(function (type) {
        source.addEventListener(type, function (event) {
          var data;
          try { data = JSON.parse(event.data); } catch (e) { return; }
          handlers[type](data, event);
        });
      });
    }

    connect();
  }

  // registry --------------------------------------------------------------

  var serviceRows = {};   // name -> {row, cells, methods}
  var samples = {};       // name -> [{at, metrics}, ...] of the last RATE_WINDOW_MS

  // Call rate, error share and mean latency between the oldest poll of the
  // last RATE_WINDOW_MS and this one. Two polls in a row would do, but the
  // counts change only with each instance's heartbeat (every 2 s, as the polls):
  // over two polls a steady load reads as 0, then double.
  function rates(name, metrics, now) {
    if (!(metrics && typeof metrics.calls === 'number')) {
      delete samples[name];
      return null;
    }
    var kept = samples[name] || (samples[name] = []);
    var last = kept[kept.length - 1];
    if (last && (metrics.calls < last.metrics.calls || metrics.errors < last.metrics.errors ||
                 metrics.seconds < last.metrics.seconds)) {
      kept.length = 0;   // an instance left and took its counts along: start again
    }
    kept.push({at: now, metrics: metrics});
    while (kept.length > 2 && now - kept[1].at >= RATE_WINDOW_MS) kept.shift();
    if (kept.length < 2) return null;
    var first = kept[0];
    var seconds = (now - first.at) / 1000;
    var calls = metrics.calls - first.metrics.calls;
    var errors = metrics.errors - first.metrics.errors;
    var busy = metrics.seconds - first.metrics.seconds;
    if (seconds <= 0) return null;
    return {
      perSecond: calls / seconds,
      errorShare: calls ? errors / calls : null,
      latencyMs: calls ? busy / calls * 1000 : null
    };
  }

  function serviceRow(name) {
    if (serviceRows[name]) return serviceRows[name];
    var row = el('tr');
    row.dataset.service = name;
    var cells = {};
    cells.name = cell(row, name, 'name');
    cells.status = cell(row, '');
    cells.status.appendChild(el('span', '', 'badge'));
    cells.instances = cell(row, '', 'num instances');
    cells.hosts = cell(row, '', 'hosts');
    cells.rate = cell(row, '', 'num rate');
    cells.errors = cell(row, '', 'num');
    cells.latency = cell(row, '', 'num');
    cells.busy = cell(row, '', 'num');
    cells.methods = cell(row, '', 'methods');
    var details = el('details');
    details.appendChild(el('summary'));
    details.appendChild(el('ul'));
    cells.methods.appendChild(details);
    serviceRows[name] = {row: row, cells: cells, methods: null};
    return serviceRows[name];
  }

  function renderService(service, now) {
    var entry = serviceRow(service.name);
    var cells = entry.cells;
    var up = service.status === 'up';
    var badge = cells.status.firstChild;
    badge.textContent = up ? 'UP' : 'DOWN';
    badge.className = 'badge ' + (up ? 'up' : 'down');
    entry.row.className = up ? '' : 'down';
    cells.instances.textContent = String(service.instances);

    clear(cells.hosts);
    var instances = service.instance_list || [];
    if (!instances.length) cells.hosts.appendChild(el('span', '\u2013', 'muted'));
    instances.forEach(function (instance) {
      var line = el('div', instance.host + ' \u00b7 pid ' + instance.pid + ' \u00b7 ' +
        instance.hub + ' \u00b7 up ' + uptime(instance.uptime_s));
      line.title = instance.instance + ', Python ' + instance.python + ' on the ' +
        instance.hub + ' hub';
      cells.hosts.appendChild(line);
    });

    var metrics = service.metrics;
    var figures = rates(service.name, metrics, now);
    // no figure: \u2026 until a second poll gives a difference, \u2013 when there
    // is none to give (no metrics, or no call meanwhile)
    var none = figures || !(metrics && typeof metrics.calls === 'number') ? '\u2013' : '\u2026';
    cells.rate.textContent = figures ? figures.perSecond.toFixed(1) : none;
    cells.errors.textContent = figures && figures.errorShare !== null
      ? (figures.errorShare * 100).toFixed(1) + ' %' : none;
    cells.errors.classList.toggle('bad', !!(figures && figures.errorShare));
    cells.latency.textContent = figures && figures.latencyMs !== null
      ? figures.latencyMs.toFixed(1) + ' ms' : none;
    cells.busy.textContent = metrics && typeof metrics.busy === 'number' ? String(metrics.busy) : '\u2013';
    if (metrics && typeof metrics.calls === 'number') {
      cells.rate.title = metrics.calls + ' calls, ' + metrics.errors + ' failed, since the instances started';
    }

    var methods = service.methods || [];
    if (entry.methods !== methods.join('\n')) {   // keep the list as it is (open or not) otherwise
      entry.methods = methods.join('\n');
      var details = cells.methods.firstChild;
      details.hidden = !methods.length;
      cells.methods.classList.toggle('muted', !methods.length);
      details.firstChild.textContent = methods.length + (methods.length === 1 ? ' method' : ' methods');
      var list = details.lastChild;
      clear(list);
      methods.forEach(function (method) { list.appendChild(el('li', method)); });
    }
    return entry.row;
  }

  function pollServices() {
    return getJSON('/services').then(function (answer) {
      problem('registry-problem', '');
      var now = performance.now();
      var body = $('services');
      var seen = {};
      (answer.services || []).forEach(function (service, index) {
        seen[service.name] = true;
        var row = renderService(service, now);
        if (body.children[index] !== row) body.insertBefore(row, body.children[index] || null);
      });
      Object.keys(serviceRows).forEach(function (name) {
        if (!seen[name]) {
          body.removeChild(serviceRows[name].row);
          delete serviceRows[name];
          delete samples[name];
        }
      });
    }, function (error) {
      problem('registry-problem', 'GET /services: ' + error.message);
    });
  }

  // revenue chart ---------------------------------------------------------

  // The y axis is drawn beside the canvas (#revenue-axis), not by smoothie on
  // top of the newest points: the range is 0 to a round number, in SECTIONS
  // steps of 1, 2, 2.5 or 5 times a power of ten, with the grid's lines on them.
  var SECTIONS = 4;
  var axisTop = null;

  function roundStep(raw) {
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var factor = raw / power;
    return (factor <= 1 ? 1 : factor <= 2 ? 2 : factor <= 2.5 ? 2.5 : factor <= 5 ? 5 : 10) * power;
  }

  function axisLabel(value) {
    if (value >= 1e6) return Number((value / 1e6).toFixed(2)) + 'M';
    if (value >= 1e4) return Number((value / 1e3).toFixed(1)) + 'k';
    return String(Number(value.toFixed(2)));
  }

  function yRange(range) {
    var highest = isFinite(range.max) && range.max > 0 ? range.max * 1.05 : 1;
    var step = roundStep(highest / SECTIONS);
    if (step * SECTIONS !== axisTop) {
      axisTop = step * SECTIONS;
      var labels = $('revenue-axis').children;
      for (var i = 0; i < labels.length; i++) {
        labels[i].textContent = axisLabel(step * (SECTIONS - i));
      }
    }
    return {min: 0, max: step * SECTIONS};
  }

  var revenue = new TimeSeries();
  var chart = new SmoothieChart({
    responsive: true,
    millisPerPixel: 100,
    interpolation: 'linear',
    scaleSmoothing: 1,   // the axis beside shows the range at once, so the plot jumps with it
    yRangeFunction: yRange,
    grid: {fillStyle: '#ffffff', strokeStyle: '#e6e9ee', lineWidth: 1, millisPerLine: 10000,
           verticalSections: SECTIONS, borderVisible: false},
    // the value labels are off (see above); the font and colour are the time stamps'
    labels: {disabled: true, fillStyle: '#6b7886', fontSize: 11,
             fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'},
    timestampFormatter: SmoothieChart.timeFormatter
  });
  chart.addTimeSeries(revenue, {strokeStyle: '#2e7d32', fillStyle: 'rgba(46, 125, 50, 0.12)',
                                lineWidth: 2});
  chart.streamTo($('revenue-chart'), 1000);

  var windowEvents = 0;
  var points = 0;

  // The stream's windows are those that hold bills: the newest is the open one
  // only while it has not ended. The server's clock decides (the event's id is
  // its second), the browser's when an event has none.
  function serverNow(event) {
    var second = Number(event && event.lastEventId);
    return second > 1e9 ? second * 1000 : Date.now();
  }

  function onWindows(data, event) {
    windowEvents += 1;
    $('revenue').dataset.windowsEvents = String(windowEvents);
    $('windows-events').textContent = windowEvents + (windowEvents === 1 ? ' event' : ' events');
    if (!data || !Array.isArray(data.items)) {
      onUnavailable(data);
      return;
    }
    problem('revenue-problem', '');
    var items = data.items;
    var newest = items[items.length - 1];
    var open = newest && new Date(newest.end).getTime() > serverNow(event) ? newest : null;
    // the chart's y value: the one float of the page (the figures shown stay text)
    var y = open ? parseFloat(open.revenue) : 0;
    if (isFinite(y)) {
      revenue.append(Date.now(), y);
      points += 1;
      $('revenue').dataset.points = String(points);
    }
    $('revenue-now').textContent = open ? open.revenue : '0.00';
    $('revenue-window').textContent = open
      ? 'window ' + when(open.start) + ' \u2013 ' + clock(new Date(open.end))
      : 'no bill in the open window yet';

    var body = $('windows');
    clear(body);
    items.slice(-WINDOWS_SHOWN).reverse().forEach(function (item) {
      var row = el('tr', null, item === open ? 'open' : '');
      cell(row, when(item.start) + ' \u2013 ' + clock(new Date(item.end)) +
        (item === open ? ' (open)' : ''));
      cell(row, item.revenue, 'num money');
      body.appendChild(row);
    });
    if (!items.length) {
      var row = el('tr');
      cell(row, 'no window yet', 'muted').colSpan = 2;
      body.appendChild(row);
    }
  }

  // analytics did not answer this second: the event says why ({"error", "message"})
  function onUnavailable(data) {
    problem('revenue-problem', data && data.error
      ? data.error + ': ' + data.message : 'the stream sent no windows');
  }

  // latest bills ----------------------------------------------------------

  var billEvents = 0;

  function billRows() {
    return Array.prototype.slice.call($('bills').children);
  }

  // shows a bill unless it is there already (events come at least once) or
  // older than the BILLS_KEPT newest; the highest ids stay on top
  function addBill(bill, total, time, fresh) {
    if (!bill || !Number.isInteger(bill.id)) return;
    var rows = billRows();
    var before = null;
    for (var i = 0; i < rows.length; i++) {
      var id = Number(rows[i].dataset.billId);
      if (id === bill.id) return;
      if (id < bill.id) { before = rows[i]; break; }
    }
    if (!before && rows.length >= BILLS_KEPT) return;
    var row = el('tr', null, fresh ? 'fresh' : '');
    row.dataset.billId = String(bill.id);
    if (bill.status === 'cancelled') markCancelled(row);
    cell(row, '#' + bill.id, 'id');
    cell(row, 'customer ' + bill.customer_id);
    cell(row, String((bill.items || []).length), 'num');
    cell(row, total, 'num money');
    cell(row, when(time), 'time');
    $('bills').insertBefore(row, before);
    billRows().slice(BILLS_KEPT).forEach(function (old) { old.parentNode.removeChild(old); });
    $('bills-empty').hidden = true;
  }

  // a cancelled bill stays in the list, struck through (its total no longer counts)
  function markCancelled(row) {
    row.classList.add('cancelled');
    row.title = 'cancelled';
  }

  function onBillCancelled(event) {
    billEvents += 1;
    $('bills-panel').dataset.billEvents = String(billEvents);
    if (!event || !event.bill) return;
    billRows().forEach(function (row) {
      if (Number(row.dataset.billId) === event.bill.id) markCancelled(row);
    });
  }

  function onBillCreated(event) {
    billEvents += 1;
    $('bills-panel').dataset.billEvents = String(billEvents);
    if (!event || !event.bill || (event.type && event.type !== 'bill_created')) return;
    var bill = event.bill;
    addBill(bill, bill.total || billTotal(bill.items), bill.billing_date || event.occurred_at, true);
  }

  // the BILLS_KEPT latest bills: the last page of GET /bills, and the one
  // before it when the last holds fewer
  function loadBills() {
    var size = BILLS_KEPT;
    return getJSON('/bills?size=' + size).then(function (first) {
      var pages = first.page.total_pages;
      if (pages <= 1) return [first];
      return getJSON('/bills?size=' + size + '&page=' + (pages - 1)).then(function (last) {
        if (last.items.length >= size) return [last];
        if (pages === 2) return [first, last];
        return getJSON('/bills?size=' + size + '&page=' + (pages - 2)).then(function (previous) {
          return [previous, last];
        });
      });
    }).then(function (answers) {
      problem('bills-problem', '');
      answers.forEach(function (answer) {
        answer.items.forEach(function (bill) {
          addBill(bill, billTotal(bill.items), bill.billing_date, false);
        });
      });
    }, function (error) {
      problem('bills-problem', 'GET /bills: ' + error.message);
    });
  }

  // top customers and products ---------------------------------------------

  function renderTop(id, items, idField, label, columns) {
    var body = $(id);
    clear(body);
    items.slice().sort(byRevenue(idField)).slice(0, TOP).forEach(function (item, index) {
      var row = el('tr');
      cell(row, String(index + 1), 'rank');
      cell(row, label + ' ' + item[idField]);
      columns.forEach(function (column) {
        cell(row, String(item[column]), column === 'revenue' ? 'num money' : 'num');
      });
      body.appendChild(row);
    });
    if (!items.length) {
      var row = el('tr');
      cell(row, 'nothing counted yet', 'muted').colSpan = 2 + columns.length;
      body.appendChild(row);
    }
  }

  function pollTops() {
    return Promise.allSettled([getJSON('/analytics/customers'), getJSON('/analytics/products')])
      .then(function (answers) {
        var failed = [];
        if (answers[0].status === 'fulfilled') {
          renderTop('top-customers', answers[0].value.items || [], 'customer_id', 'customer',
                    ['revenue', 'bills']);
        } else {
          failed.push('GET /analytics/customers: ' + answers[0].reason.message);
        }
        if (answers[1].status === 'fulfilled') {
          renderTop('top-products', answers[1].value.items || [], 'product_id', 'product',
                    ['units', 'revenue']);
        } else {
          failed.push('GET /analytics/products: ' + answers[1].reason.message);
        }
        problem('tops-problem', failed.join('; '));
      });
  }

  // start -------------------------------------------------------------------

  // runs task every ms after the previous run ended (never two at once); a
  // run that throws is still reported in the browser's console, and the next
  // one comes all the same
  function every(ms, task) {
    function next() { setTimeout(run, ms); }
    function run() { task().then(next, function (error) { next(); throw error; }); }
    next();
  }

  // the windows come as "windows" events; unnamed ones ("message") are read alike
  follow('/analytics/stream', 'windows-stream', 'revenue',
         {windows: onWindows, message: onWindows, unavailable: onUnavailable});
  follow('/events/stream', 'bills-stream', 'bills-panel', {bill_created: onBillCreated, bill_cancelled: onBillCancelled},
         function (again) {
           if (again) loadBills();   // bills made while the stream was away
         });

  Promise.allSettled([pollServices(), loadBills(), pollTops()]).then(function () {
    document.body.dataset.state = 'loaded';
    $('loaded').textContent = 'loaded at ' + clock(new Date()) + ', polling every ' +
      POLL_MS / 1000 + ' s';
    every(POLL_MS, pollServices);
    every(POLL_MS, pollTops);
  });
})();
